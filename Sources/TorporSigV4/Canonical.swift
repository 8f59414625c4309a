/// The canonicalisation rules of Signature Version 4, each a pure function
/// over bytes.
enum Canonical {
    /// RFC 3986 unreserved characters: the only bytes SigV4 leaves unencoded.
    static let unreserved: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(byte)] = true }
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(byte)] = true }
        for byte in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(byte)] = true }
        for byte in "-._~".utf8 { table[Int(byte)] = true }
        return table
    }()

    @inline(__always)
    static func appendPercentEncoded(_ byte: UInt8, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "%"))
        out.append(Hex.upper[Int(byte >> 4)])
        out.append(Hex.upper[Int(byte & 0x0F)])
    }

    /// Appends `bytes` with every byte outside the unreserved set encoded.
    static func appendEncoded<Bytes: Sequence<UInt8>>(_ bytes: Bytes, to out: inout [UInt8], keepSlash: Bool = false) {
        for byte in bytes {
            if unreserved[Int(byte)] || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                appendPercentEncoded(byte, to: &out)
            }
        }
    }

    // MARK: URI

    /// The canonical URI.
    ///
    /// With `normalize` (every service but S3): dot segments and empty
    /// segments are removed, then every byte outside the unreserved set and
    /// `/` is encoded, which encodes the `%` of an escape already on the wire
    /// a second time, as the spec asks.
    /// Without it (S3): the path stays as sent; only bytes a URL may not hold
    /// raw are encoded, and existing escapes are kept.
    static func appendURI(_ path: String, normalize: Bool, to out: inout [UInt8]) {
        if normalize {
            appendEncoded(normalizedPath(path).utf8, to: &out, keepSlash: true)
            return
        }
        let bytes = Array(path.utf8)
        if bytes.isEmpty { out.append(UInt8(ascii: "/")); return }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count, isHex(bytes[index + 1]), isHex(bytes[index + 2]) {
                out.append(contentsOf: bytes[index...(index + 2)])
                index += 3
                continue
            }
            if unreserved[Int(byte)] || byte == UInt8(ascii: "/") {
                out.append(byte)
            } else {
                appendPercentEncoded(byte, to: &out)
            }
            index += 1
        }
    }

    /// Removes `.` and empty segments and resolves `..`, keeping a trailing
    /// slash, as botocore and the AWS services do.
    static func normalizedPath(_ path: String) -> String {
        if path == "/" || path.isEmpty { return "/" }
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(segment)
            }
        }
        var result = "/" + segments.joined(separator: "/")
        if path.hasSuffix("/") && !result.hasSuffix("/") { result += "/" }
        return result
    }

    // MARK: Query

    /// The canonical query string: each parameter decoded, encoded again with
    /// the unreserved set only, and sorted by encoded name, then value.
    static func appendQuery(_ query: String?, extra: [(String, String)] = [], to out: inout [UInt8]) {
        var pairs: [(name: [UInt8], value: [UInt8])] = []
        if let query, !query.isEmpty {
            for part in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
                let equals = part.firstIndex(of: UInt8(ascii: "="))
                let rawName = equals.map { part[..<$0] } ?? part[...]
                let rawValue = equals.map { part[part.index(after: $0)...] } ?? part[part.endIndex...]
                var name: [UInt8] = [], value: [UInt8] = []
                appendEncoded(percentDecoded(rawName), to: &name)
                appendEncoded(percentDecoded(rawValue), to: &value)
                pairs.append((name, value))
            }
        }
        for (rawName, rawValue) in extra {
            var name: [UInt8] = [], value: [UInt8] = []
            appendEncoded(rawName.utf8, to: &name)
            appendEncoded(rawValue.utf8, to: &value)
            pairs.append((name, value))
        }
        if pairs.count > 1 {
            pairs.sort { $0.name != $1.name ? $0.name.lexicographicallyPrecedes($1.name) : $0.value.lexicographicallyPrecedes($1.value) }
        }
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: pair.name)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: pair.value)
        }
    }

    /// Decodes `%XX` escapes and `+` (a space in a form-encoded query). A `%`
    /// not followed by two hex digits stays as it is.
    static func percentDecoded<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                if first < bytes.endIndex {
                    let second = bytes.index(after: first)
                    if second < bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) {
                        out.append(high << 4 | low)
                        index = bytes.index(after: second)
                        continue
                    }
                }
                out.append(byte)
            } else if byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(byte)
            }
            index = bytes.index(after: index)
        }
        return out
    }

    static func isHex(_ byte: UInt8) -> Bool { hexValue(byte) != nil }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Headers

    /// Headers that proxies or HTTP clients may add, drop or rewrite on the
    /// way; signing them would make a valid request fail verification.
    static let unsignedHeaders: [[UInt8]] = [
        "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "x-amzn-trace-id",
    ].map { Array($0.utf8) }

    struct CanonicalHeaders {
        /// `name:value\n` lines, sorted by name.
        var block: [UInt8] = []
        /// `name;name;...`
        var signedNames: [UInt8] = []
    }

    /// Names lower-cased and sorted; values trimmed, with every run of
    /// whitespace (folded lines included) collapsed to one space; values of a
    /// repeated name joined with `,` in the order they were given.
    ///
    /// This runs on every request, so it sorts indices and compares names
    /// case-insensitively in place rather than allocating a lower-cased copy
    /// of each header.
    static func headers(_ headers: HTTPHeaders) -> CanonicalHeaders {
        // Every name lower-cased once into one scratch buffer; the sort and
        // the output then work on spans of it.
        var names: [UInt8] = []
        var spans: [(start: Int, count: Int, field: Int)] = []
        spans.reserveCapacity(headers.count)
        var valueBytes = 0
        for (index, field) in headers.fields.enumerated() {
            let start = names.count
            var name = field.name
            name.withUTF8 { bytes in
                for byte in bytes { names.append(asciiLower(byte)) }
            }
            let count = names.count - start
            if isUnsignedLowercased(names, start: start, count: count) {
                names.removeLast(count)
            } else {
                spans.append((start, count, index))
                valueBytes += field.value.utf8.count
            }
        }

        var result = CanonicalHeaders()
        names.withUnsafeBufferPointer { names in
            func compare(_ a: (start: Int, count: Int, field: Int), _ b: (start: Int, count: Int, field: Int)) -> Int {
                let common = min(a.count, b.count)
                for offset in 0..<common {
                    let x = names[a.start + offset], y = names[b.start + offset]
                    if x != y { return x < y ? -1 : 1 }
                }
                return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
            }
            // Insertion sort: a request has a handful of headers, and it is
            // stable, so repeated values keep the order they were given in.
            if spans.count > 1 {
                for i in 1..<spans.count {
                    let current = spans[i]
                    var j = i - 1
                    while j >= 0, compare(spans[j], current) > 0 {
                        spans[j + 1] = spans[j]
                        j -= 1
                    }
                    spans[j + 1] = current
                }
            }
            result.block.reserveCapacity(names.count * 2 + valueBytes + spans.count * 2)
            result.signedNames.reserveCapacity(names.count + spans.count)
            var previous: (start: Int, count: Int, field: Int)?
            for span in spans {
                let name = UnsafeBufferPointer(rebasing: names[span.start..<(span.start + span.count)])
                if let previous, compare(previous, span) == 0 {
                    result.block.removeLast() // the newline of the previous value
                    result.block.append(UInt8(ascii: ","))
                } else {
                    if previous != nil { result.signedNames.append(UInt8(ascii: ";")) }
                    result.signedNames.append(contentsOf: name)
                    result.block.append(contentsOf: name)
                    result.block.append(UInt8(ascii: ":"))
                }
                appendTrimmedValue(headers.fields[span.field].value, to: &result.block)
                result.block.append(UInt8(ascii: "\n"))
                previous = span
            }
        }
        return result
    }

    static func isUnsignedLowercased(_ names: [UInt8], start: Int, count: Int) -> Bool {
        // Every unsigned name is 2 to 19 bytes long.
        guard count >= 2, count <= 19 else { return false }
        for candidate in unsignedHeaders where candidate.count == count {
            var equal = true
            for offset in 0..<count where candidate[offset] != names[start + offset] {
                equal = false
                break
            }
            if equal { return true }
        }
        return false
    }

    static func isUnsigned(_ name: String) -> Bool {
        let count = name.utf8.count
        // Every unsigned name is 2 to 19 bytes long.
        guard count >= 2, count <= 19 else { return false }
        for candidate in unsignedHeaders where candidate.count == count {
            if zip(candidate, name.utf8).allSatisfy({ $0 == asciiLower($1) }) { return true }
        }
        return false
    }

    static func trimmedValue(_ value: String) -> [UInt8] {
        var out: [UInt8] = []
        appendTrimmedValue(value, to: &out)
        return out
    }

    static func appendTrimmedValue(_ value: String, to out: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            @inline(__always) func isSpace(_ byte: UInt8) -> Bool {
                byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
            }
            // Most values need no change: copy them whole.
            var clean = bytes.isEmpty || (!isSpace(bytes[0]) && !isSpace(bytes[bytes.count - 1]))
            if clean {
                var previousSpace = false
                for byte in bytes {
                    let space = isSpace(byte)
                    if space && (byte != 0x20 || previousSpace) { clean = false; break }
                    previousSpace = space
                }
            }
            if clean {
                out.append(contentsOf: bytes)
                return
            }
            var pendingSpace = false
            var wroteAny = false
            for byte in bytes {
                if isSpace(byte) {
                    pendingSpace = wroteAny
                } else {
                    if pendingSpace { out.append(0x20); pendingSpace = false }
                    out.append(byte)
                    wroteAny = true
                }
            }
        }
    }
}
