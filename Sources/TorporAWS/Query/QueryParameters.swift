/// The parameters of a Query-protocol request (`Action`, `Version` and the
/// operation's own), kept in order and encoded as a form body.
public struct QueryParameters: Sendable, Equatable {
    public private(set) var pairs: [(String, String)] = []

    public init(action: String, version: String) {
        pairs = [("Action", action), ("Version", version)]
    }

    public static func == (lhs: QueryParameters, rhs: QueryParameters) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0 == $1 }
    }

    public subscript(name: String) -> String? {
        pairs.first { $0.0 == name }?.1
    }

    public mutating func set(_ name: String, _ value: String) {
        pairs.append((name, value))
    }

    public mutating func set(_ name: String, _ value: Bool) {
        pairs.append((name, value ? "true" : "false"))
    }

    public mutating func set(_ name: String, _ value: Int) {
        pairs.append((name, String(value)))
    }

    /// A list flattened the EC2 way: `InstanceId.1`, `InstanceId.2`, ...
    public mutating func setList(_ name: String, _ values: [String]) {
        for (index, value) in values.enumerated() {
            pairs.append(("\(name).\(index + 1)", value))
        }
    }

    /// `Filter.N.Name` and `Filter.N.Value.M`.
    public mutating func setFilters(_ filters: [(name: String, values: [String])]) {
        for (index, filter) in filters.enumerated() {
            pairs.append(("Filter.\(index + 1).Name", filter.name))
            for (valueIndex, value) in filter.values.enumerated() {
                pairs.append(("Filter.\(index + 1).Value.\(valueIndex + 1)", value))
            }
        }
    }

    /// `application/x-www-form-urlencoded`, encoding every byte outside the
    /// RFC 3986 unreserved set (a space is `%20`, never `+`).
    public var formEncoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 2 })
        for (index, (name, value)) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            Self.appendEncoded(name, to: &out)
            out.append(UInt8(ascii: "="))
            Self.appendEncoded(value, to: &out)
        }
        return out
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)

    private static func appendEncoded(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
    }
}
