/// The instant a request is signed, in the two forms SigV4 uses:
/// `20150830T123600Z` (X-Amz-Date) and `20150830` (the credential scope).
///
/// The signer never reads a clock: callers pass the date in, so tests pin it
/// and the client can correct it for clock skew.
public struct SigningDate: Sendable, Equatable, CustomStringConvertible {
    public let secondsSinceEpoch: Int64
    /// `YYYYMMDDTHHMMSSZ`
    public let amzDate: String
    /// `YYYYMMDD`
    public let dateStamp: String

    public init(secondsSinceEpoch: Int64) {
        self.secondsSinceEpoch = secondsSinceEpoch
        let civil = CivilTime(secondsSinceEpoch: secondsSinceEpoch)
        let stamp = Self.digits(civil.year, 4) + Self.digits(civil.month, 2) + Self.digits(civil.day, 2)
        dateStamp = stamp
        amzDate = stamp + "T" + Self.digits(civil.hour, 2) + Self.digits(civil.minute, 2)
            + Self.digits(civil.second, 2) + "Z"
    }

    /// Parses `YYYYMMDDTHHMMSSZ`; nil when the text is not exactly that form
    /// or names no real date.
    public init?(amzDate text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
              (1...12).contains(month), day >= 1, day <= CivilTime.daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60
        else { return nil }
        let days = CivilTime.daysFromCivil(year: year, month: month, day: day)
        self.init(secondsSinceEpoch: Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second))
    }

    public var description: String { amzDate }

    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// Gregorian calendar arithmetic in UTC, without Foundation.
/// (Howard Hinnant's days-from-civil algorithms.)
struct CivilTime {
    var year, month, day, hour, minute, second: Int

    init(secondsSinceEpoch: Int64) {
        let days = Int(secondsSinceEpoch >= 0 ? secondsSinceEpoch / 86_400 : (secondsSinceEpoch - 86_399) / 86_400)
        let rest = Int(secondsSinceEpoch - Int64(days) * 86_400)
        hour = rest / 3600
        minute = rest % 3600 / 60
        second = rest % 60
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
