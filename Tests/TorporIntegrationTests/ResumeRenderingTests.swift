import Testing
@testable import TorporCLI

/// How `torpor report resume` writes durations in its table.
@Suite("Resume report text")
struct ResumeRenderingTests {
    @Test("durations round, not truncate; past 100 s they read as minutes and seconds")
    func durations() {
        #expect(ResumeRendering.seconds(22.46) == "22.5s")
        #expect(ResumeRendering.seconds(99.96) == "1m40s")
        #expect(ResumeRendering.seconds(179.6) == "3m00s", "rounded, not cut to 2m59s")
        #expect(ResumeRendering.seconds(nil) == "-")
        #expect(ResumeRendering.seconds(30, timedOut: true) == "timeout")
    }

    @Test("a violation's measurement keeps its tenths, so it never reads as equal to the limit")
    func violations() {
        #expect(ResumeRendering.precise(120.4) == "120.4s (2m00s)")
        #expect(ResumeRendering.precise(61.3) == "61.3s")
        #expect(ResumeRendering.precise(nil) == "timeout")
        #expect(ResumeRendering.duration(120) == "2m")
        #expect(ResumeRendering.duration(90) == "90s")
    }
}
