import Testing
@testable import TorporAWS

@Suite("Timestamps")
struct TimestampTests {
    /// 2026-11-26T17:53:19Z
    static let moment: Int64 = 1_795_715_599

    @Test("ISO 8601 forms AWS writes", arguments: [
        "2026-11-26T17:53:19Z", "2026-11-26T17:53:19.000Z", "2026-11-26T17:53:19.123456789Z", "2026-11-26T17:53:19z",
        "2026-11-26t17:53:19Z", "2026-11-26 17:53:19Z", "2026-11-26T19:53:19+02:00", "2026-11-26T12:53:19-05:00",
        "2026-11-26T17:53:19+00:00", "2026-11-26T17:53:19-00:00", "2026-11-26T17:53:19.5+00:00", "2026-11-26T17:53:19",
        "2026-11-27T03:23:19+09:30",
    ])
    func parses(text: String) {
        #expect(ISO8601.parse(text) == Self.moment, "\(text)")
    }

    @Test("an offset can move the date across midnight and a year end")
    func offsetsAcrossDays() {
        #expect(ISO8601.parse("2027-01-01T01:00:00+02:00") == ISO8601.parse("2026-12-31T23:00:00Z"))
        #expect(ISO8601.parse("2026-12-31T22:00:00-03:00") == ISO8601.parse("2027-01-01T01:00:00Z"))
        #expect(ISO8601.parse("2024-02-29T00:00:00Z") == 1_709_164_800)
    }

    @Test("garbage is nil", arguments: [
        "", "garbage", "2026-11-26", "2026-11-26T17:53", "2026/11/26T17:53:19Z", "2026-11-26T17-53-19Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-11-26T24:00:00Z", "2026-11-26T17:60:00Z", "2026-11-26T17:53:60Z", "2026-11-26T17:53:19X",
        "2026-11-26T17:53:19+0200", "2026-11-26T17:53:19+02", "2026-11-26T17:53:19+02:0", "2026-11-26T17:53:19ZZ",
        "2026-11-26T17:53:19Z ", " 2026-11-26T17:53:19Z", "2026-11-26T17:53:19.Zx", "20a6-11-26T17:53:19Z",
        "2026-11-26T17:53:19+ab:cd", "2026-11-26X17:53:19Z",
    ])
    func garbage(text: String) {
        #expect(ISO8601.parse(text) == nil, "\(text)")
    }

    @Test("format writes EC2's form and parses back")
    func formatRoundTrip() {
        #expect(ISO8601.format(Self.moment) == "2026-11-26T17:53:19.000Z")
        #expect(ISO8601.format(0) == "1970-01-01T00:00:00.000Z")
        #expect(ISO8601.format(1_709_164_800 + 86_399) == "2024-02-29T23:59:59.000Z")
        var seconds: Int64 = 0
        while seconds < 4_102_444_800 {
            #expect(ISO8601.parse(ISO8601.format(seconds)) == seconds)
            seconds += 9_876_543
        }
    }

    @Test("the HTTP Date header")
    func httpDate() {
        #expect(HTTPDate.parse("Thu, 26 Nov 2026 17:53:19 GMT") == Self.moment)
        #expect(HTTPDate.parse("Thu, 26 nov 2026 17:53:19 gmt") == Self.moment)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Thu, 29 Feb 2024 00:00:00 GMT") == 1_709_164_800)
    }

    @Test("HTTP dates that are not RFC 7231's form are nil", arguments: [
        "", "garbage", "Thu, 26 Nov 2026 17:53:19 UTC", "Thu, 26 Nov 2026 17:53:19", "Thu, 26 Foo 2026 17:53:19 GMT",
        "Thu, 31 Feb 2026 00:00:00 GMT", "Thu, 26 Nov 2026 25:00:00 GMT", "Thu, 26 Nov 2026 17:53 GMT",
        "Thursday, 26-Nov-26 17:53:19 GMT", "2026-11-26T17:53:19Z", "Thu, xx Nov 2026 17:53:19 GMT",
    ])
    func httpDateGarbage(text: String) {
        #expect(HTTPDate.parse(text) == nil, "\(text)")
    }
}
