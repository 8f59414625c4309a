/// Builds EC2's XML answers. Text is escaped; nothing else is needed for
/// the small, fixed vocabulary of these documents.
struct XMLWriter {
    private(set) var text = ""

    init(root: String) {
        text.reserveCapacity(4096)
        text += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(root) xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    }

    init(fragment: ()) {}

    mutating func open(_ name: String) { text += "<\(name)>" }
    mutating func close(_ name: String) { text += "</\(name)>" }

    mutating func element(_ name: String, _ value: String) {
        text += "<\(name)>"
        Self.appendEscaped(value, to: &text)
        text += "</\(name)>"
    }

    mutating func element(_ name: String, _ value: Int) { text += "<\(name)>\(value)</\(name)>" }
    mutating func element(_ name: String, _ value: Bool) { text += "<\(name)>\(value ? "true" : "false")</\(name)>" }

    mutating func element(_ name: String, _ body: (inout XMLWriter) -> Void) {
        text += "<\(name)>"
        body(&self)
        text += "</\(name)>"
    }

    static func appendEscaped(_ value: String, to text: inout String) {
        guard value.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else {
            text += value
            return
        }
        for character in value {
            switch character {
            case "&": text += "&amp;"
            case "<": text += "&lt;"
            case ">": text += "&gt;"
            case "\"": text += "&quot;"
            case "'": text += "&apos;"
            default: text.append(character)
            }
        }
    }

    mutating func finish(_ root: String) -> String {
        text += "</\(root)>"
        return text
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
