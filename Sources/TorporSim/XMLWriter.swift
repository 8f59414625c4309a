/// Builds EC2's XML answers into bytes: a page of 1000 instances is about
/// 70,000 small appends, and appending bytes is several times cheaper than
/// growing a String. Text is escaped; nothing else is needed for the small,
/// fixed vocabulary of these documents.
struct XMLWriter {
    private(set) var bytes: [UInt8] = []

    init(root: String) {
        bytes.reserveCapacity(64 * 1024)
        raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<")
        raw(root)
        raw(" xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">")
    }

    private mutating func raw(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func open(_ name: String) {
        bytes.append(0x3C)
        raw(name)
        bytes.append(0x3E)
    }

    mutating func close(_ name: String) {
        bytes.append(0x3C)
        bytes.append(0x2F)
        raw(name)
        bytes.append(0x3E)
    }

    mutating func element(_ name: String, _ value: String) {
        open(name)
        var value = value
        value.withUTF8 { Self.appendEscaped($0, to: &bytes) }
        close(name)
    }

    mutating func element(_ name: String, _ value: Int) {
        open(name)
        raw(String(value))
        close(name)
    }

    mutating func element(_ name: String, _ value: Bool) {
        open(name)
        raw(value ? "true" : "false")
        close(name)
    }

    mutating func element(_ name: String, _ body: (inout XMLWriter) -> Void) {
        open(name)
        body(&self)
        close(name)
    }

    static func appendEscaped(_ value: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        for byte in value {
            switch byte {
            case 0x26: out.append(contentsOf: [0x26, 0x61, 0x6D, 0x70, 0x3B]) // &amp;
            case 0x3C: out.append(contentsOf: [0x26, 0x6C, 0x74, 0x3B]) // &lt;
            case 0x3E: out.append(contentsOf: [0x26, 0x67, 0x74, 0x3B]) // &gt;
            case 0x22: out.append(contentsOf: [0x26, 0x71, 0x75, 0x6F, 0x74, 0x3B]) // &quot;
            case 0x27: out.append(contentsOf: [0x26, 0x61, 0x70, 0x6F, 0x73, 0x3B]) // &apos;
            default: out.append(byte)
            }
        }
    }

    static func appendEscaped(_ value: String, to text: inout String) {
        var bytes: [UInt8] = []
        var value = value
        value.withUTF8 { appendEscaped($0, to: &bytes) }
        text += String(decoding: bytes, as: UTF8.self)
    }

    mutating func finish(_ root: String) -> String {
        close(root)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// EC2's timestamp form: `2026-11-26T17:53:19.000Z`.
func ec2Timestamp(_ seconds: Double) -> String {
    let whole = Int64(seconds.rounded(.down))
    let millis = Int((seconds - Double(whole)) * 1000)
    var days = whole >= 0 ? whole / 86_400 : (whole - 86_399) / 86_400
    let rest = whole - days * 86_400
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let dayOfEra = days - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(pad(year, 4))-\(pad(Int64(month), 2))-\(pad(day, 2))T\(pad(rest / 3600, 2)):\(pad(rest % 3600 / 60, 2)):\(pad(rest % 60, 2)).\(pad(Int64(millis), 3))Z"
}
