import TorporSigV4

/// ISO 8601 timestamps as AWS writes them: `2026-11-26T17:53:19Z`,
/// `2026-11-26T17:53:19.000Z`, or with an offset `+00:00`.
public enum ISO8601 {
    /// Seconds since 1970, or nil when the text is not such a timestamp.
    public static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var index = 19
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard bytes.count >= index + 6, bytes[index + 3] == UInt8(ascii: ":"),
                      let hours = number((index + 1)..<(index + 3)), let minutes = number((index + 4)..<(index + 6))
                else { return nil }
                offsetSeconds = (hours * 3600 + minutes * 60) * (bytes[index] == UInt8(ascii: "+") ? 1 : -1)
                index += 6
            default: return nil
            }
        }
        guard index == bytes.count else { return nil }
        let stamp = String(format4: year) + String(format2: month) + String(format2: day) + "T"
            + String(format2: hour) + String(format2: minute) + String(format2: second) + "Z"
        guard let date = SigningDate(amzDate: stamp) else { return nil }
        return date.secondsSinceEpoch - Int64(offsetSeconds)
    }

    /// `2026-11-26T17:53:19.000Z`, as EC2 writes timestamps.
    public static func format(_ seconds: Int64) -> String {
        let amz = SigningDate(secondsSinceEpoch: seconds).amzDate
        let b = Array(amz)
        return "\(String(b[0..<4]))-\(String(b[4..<6]))-\(String(b[6..<8]))T\(String(b[9..<11])):\(String(b[11..<13])):\(String(b[13..<15])).000Z"
    }
}

/// The HTTP `Date` header: `Thu, 26 Nov 2026 17:53:19 GMT` (RFC 7231).
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    public static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5].uppercased() == "GMT",
              let day = Int(parts[1]), let monthIndex = months.firstIndex(of: parts[2].lowercased()),
              let year = Int(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]) else { return nil }
        let stamp = String(format4: year) + String(format2: monthIndex + 1) + String(format2: day) + "T"
            + String(format2: hour) + String(format2: minute) + String(format2: second) + "Z"
        return SigningDate(amzDate: stamp)?.secondsSinceEpoch
    }
}

extension String {
    init(format2 value: Int) { self = value < 10 ? "0\(value)" : "\(value)" }
    init(format4 value: Int) {
        let text = String(value)
        self = text.count >= 4 ? text : String(repeating: "0", count: 4 - text.count) + text
    }
}
