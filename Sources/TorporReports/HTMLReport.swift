import Foundation

/// Renders a `ResumeReport` as one self-contained HTML5 page: inline CSS,
/// inline SVG charts and a tiny inline check script, with no external
/// resources. The output depends only on the report (no random ids, no clock
/// other than `generatedAt`), so the same report always renders the same bytes.
public enum HTMLReport {
    /// The whole page for `report`.
    public static func render(_ report: ResumeReport) -> String {
        var out = ""
        out.reserveCapacity(96 * 1024)
        out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        out += "<meta name=\"generator\" content=\"torpor\">\n"
        out += "<title>Torpor resume report, \(escape(formatTimestamp(report.generatedAt)))</title>\n"
        out += "<style>\n\(stylesheet)</style>\n</head>\n<body>\n<main>\n"
        out += header(report)
        out += overview(report)
        for (index, policy) in report.policies.enumerated() {
            out += policySection(policy, index: index)
        }
        out += "<footer>Durations are measured from the moment EC2 accepted the StartInstances call. "
        out += "Percentiles are of the readiness phase; a timed-out resume counts as slower than every completed one.</footer>\n"
        out += "</main>\n<script>\n\(script)</script>\n</body>\n</html>\n"
        return out
    }

    // MARK: - Formatting

    /// From this many seconds on (some 30 million years) a value is not a
    /// measurement but a damaged row or a typo: it is written with an
    /// exponent, and never turned into a whole number (which could trap).
    static let hugeSeconds = 1e15

    /// `1.23e+20 s`: a huge value, shown without converting it to an integer.
    private static func exponent(_ seconds: Double) -> String {
        String(format: "%.3g", seconds) + " s"
    }

    /// `12.3 s` below 100 seconds, `2m 05s` from there on, `1h 02m 05s` from
    /// an hour; `—` for a value that is not finite.
    public static func formatSeconds(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "—" }
        guard abs(seconds) < hugeSeconds else { return exponent(seconds) }
        let tenths = (seconds * 10).rounded()
        if abs(tenths) < 1000 {
            return decimal(tenths / 10, places: 1) + " s"
        }
        let total = Int(seconds.rounded())
        let sign = total < 0 ? "-" : ""
        let magnitude = abs(total)
        let hours = magnitude / 3600, minutes = (magnitude % 3600) / 60, secs = magnitude % 60
        if hours > 0 {
            return "\(sign)\(hours)h \(twoDigits(minutes))m \(twoDigits(secs))s"
        }
        return "\(sign)\(minutes)m \(twoDigits(secs))s"
    }

    /// A span of time such as a policy's window: `7 days`, `36 h`, `30 min`,
    /// otherwise as `formatSeconds`.
    static func formatSpan(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds > 0, seconds < hugeSeconds else { return formatSeconds(seconds) }
        let whole = seconds.rounded()
        if whole == seconds {
            let value = Int(whole)
            if value % 86_400 == 0 { return value == 86_400 ? "1 day" : "\(value / 86_400) days" }
            if value % 3600 == 0 { return "\(value / 3600) h" }
            if value % 60 == 0 && value >= 120 { return "\(value / 60) min" }
        }
        return formatSeconds(seconds)
    }

    /// The times `civil` writes as a date: about a million years either side
    /// of 1970, whole numbers of seconds well within an integer. Anything
    /// else (a damaged row) is not a time.
    static let civilRange: ClosedRange<Double> = -31_500_000_000_000...31_500_000_000_000

    /// `2025-11-26 20:25:31 UTC` for seconds since 1970 (whole seconds); `—`
    /// for a value that is not a time.
    static func formatTimestamp(_ secondsSince1970: Double) -> String {
        guard civilRange.contains(secondsSince1970) else { return "—" }
        let (date, time) = civil(secondsSince1970)
        return "\(date) \(time) UTC"
    }

    /// The date and time parts in UTC, without a zone: `2025-11-26`,
    /// `20:25:31`; `—` and `—` for a value that is not a time (not finite, or
    /// outside `civilRange`).
    static func civil(_ secondsSince1970: Double) -> (date: String, time: String) {
        guard civilRange.contains(secondsSince1970) else { return ("—", "—") }
        let total = Int(secondsSince1970.rounded(.down))
        var days = total / 86_400
        var secondOfDay = total % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let yearText = year >= 0 && year < 10_000 ? String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
                                                   : String(year)
        let date = "\(yearText)-\(twoDigits(month))-\(twoDigits(day))"
        let time = "\(twoDigits(secondOfDay / 3600)):\(twoDigits(secondOfDay % 3600 / 60)):\(twoDigits(secondOfDay % 60))"
        return (date, time)
    }

    /// Escapes text for HTML element content and quoted attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\u{0}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func twoDigits(_ value: Int) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    /// A fixed-point number without locale or exponent: `12.3`, `-0.5`, `40`.
    static func decimal(_ value: Double, places: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return String(format: "%.0f", value.rounded()) }
        let units = Int64(scaled)
        let negative = value < 0 && units != 0
        let factor = Int64(scale)
        var text = String(units / factor)
        if places > 0 {
            let fraction = String(units % factor)
            text += "." + String(repeating: "0", count: places - fraction.count) + fraction
        }
        return negative ? "-" + text : text
    }

    /// A coordinate for SVG: one decimal, trailing `.0` dropped.
    private static func coord(_ value: Double) -> String {
        let text = decimal(value, places: 1)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    private static func percent(_ share: Double) -> String {
        let value = share * 100
        guard value.isFinite else { return "—" }
        if value == value.rounded() && abs(value) < hugeSeconds { return "\(Int(value))%" }
        return decimal(value, places: 1) + "%"
    }

    private static func plural(_ count: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
        "\(count) " + (count == 1 ? singular : (pluralForm ?? singular + "s"))
    }

    // MARK: - Page parts

    private static func header(_ report: ResumeReport) -> String {
        let (date, time) = civil(report.generatedAt)
        var out = "<header class=\"page-head\">\n<h1>Torpor resume report</h1>\n<p class=\"meta\">"
        out += "<span>Generated <time datetime=\"\(date)T\(time)Z\">\(escape(formatTimestamp(report.generatedAt)))</time></span>"
        if let since = report.since {
            out += "<span>Resumes since \(escape(formatTimestamp(since)))</span>"
        } else {
            out += "<span>Time range: each policy's window</span>"
        }
        out += "<span>\(plural(report.policies.count, "policy", "policies"))</span>"
        out += "</p>\n</header>\n"
        return out
    }

    private static func overview(_ report: ResumeReport) -> String {
        guard !report.policies.isEmpty else {
            return "<section class=\"card empty-report\"><p class=\"placeholder\">This report has no policies.</p></section>\n"
        }
        var out = "<section class=\"card overview\">\n<h2>Policies</h2>\n<div class=\"table-wrap\"><table>\n<thead><tr>"
        out += "<th>Policy</th><th>Readiness</th><th class=\"num\">Resumes</th><th class=\"num\">Timeouts</th>"
        out += "<th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">max</th><th>Objectives</th>"
        out += "</tr></thead>\n<tbody>\n"
        for (index, policy) in report.policies.enumerated() {
            let s = policy.summary
            out += "<tr><td class=\"wrap\"><a href=\"#policy-\(index)\">\(escape(policy.name))</a></td>"
            out += "<td class=\"wrap\"><code>\(escape(policy.readiness))</code></td>"
            out += "<td class=\"num\">\(s.count)</td>"
            out += "<td class=\"num\(s.timeouts > 0 ? " warn" : "")\">\(s.timeouts)</td>"
            out += percentileCell(s.p50, timedOut: s.p50TimedOut, limit: policy.objectives.p50)
            out += percentileCell(s.p95, timedOut: s.p95TimedOut, limit: policy.objectives.p95)
            out += percentileCell(s.max, timedOut: s.maxTimedOut, limit: policy.objectives.max)
            out += "<td>\(badge(for: policy))</td></tr>\n"
        }
        out += "</tbody>\n</table></div>\n</section>\n"
        return out
    }

    /// Whether a policy has anything to chart.
    static func hasData(_ policy: PolicyReport) -> Bool {
        policy.summary.count > 0 || policy.phases.contains { !$0.seconds.isEmpty }
    }

    private static func badge(for policy: PolicyReport) -> String {
        switch policy.summary.objectivesMet {
        case true?: return "<span class=\"badge ok\">objectives met</span>"
        case false?: return "<span class=\"badge bad\">objectives violated</span>"
        case nil:
            if policy.objectives.isEmpty { return "<span class=\"badge neutral\">no objectives</span>" }
            return "<span class=\"badge neutral\">no data</span>"
        }
    }

    private static func objectivesText(_ objectives: ObjectiveLimits) -> String {
        var parts: [String] = []
        if let p50 = objectives.p50 { parts.append("p50 ≤ \(formatSeconds(p50))") }
        if let p95 = objectives.p95 { parts.append("p95 ≤ \(formatSeconds(p95))") }
        if let max = objectives.max { parts.append("max ≤ \(formatSeconds(max))") }
        return parts.isEmpty ? "none" : parts.joined(separator: " · ")
    }

    private static func policySection(_ policy: PolicyReport, index: Int) -> String {
        let withData = hasData(policy)
        var out = "<section class=\"card policy\" id=\"policy-\(index)\" data-has-data=\"\(withData)\">\n"
        out += "<div class=\"policy-head\"><h2>\(escape(policy.name))</h2>\(badge(for: policy))</div>\n"
        out += "<dl class=\"facts\">"
        out += "<div><dt>Readiness</dt><dd><code>\(escape(policy.readiness))</code> <span class=\"muted\">(\(escape(policy.readinessPhase.label)))</span></dd></div>"
        out += "<div><dt>Window</dt><dd>\(escape(formatSpan(policy.window)))</dd></div>"
        out += "<div><dt>Deadline</dt><dd>\(escape(formatSeconds(policy.deadline)))</dd></div>"
        out += "<div><dt>Objectives</dt><dd>\(escape(objectivesText(policy.objectives)))</dd></div>"
        out += "</dl>\n"

        out += "<h3>Summary</h3>\n"
        out += statsTable([policy.summary], policy: policy, typeColumn: false)
        if policy.summary.unfollowed > 0 {
            out += "<p class=\"note bad-text\">\(plural(policy.summary.unfollowed, "resume")) still marked in flight past the deadline: "
                + "no tracker followed them to the end (run <code>torpor worker</code> on this queue to pick them up).</p>\n"
        }

        out += "<h3>Resume time distribution</h3>\n"
        if withData {
            out += chartFigure(policy, index: index)
        } else {
            out += "<div class=\"placeholder chart-empty\">No resumes measured in this window.</div>\n"
        }

        if !policy.objectives.isEmpty {
            out += "<h3>Objective violations</h3>\n"
            out += violationsList(policy)
        }

        if !policy.byInstanceType.isEmpty {
            out += "<h3>By instance type</h3>\n"
            out += statsTable(policy.byInstanceType, policy: policy, typeColumn: true)
        }

        out += "<h3>Slowest resumes</h3>\n"
        out += slowestTable(policy)
        out += "</section>\n"
        return out
    }

    private static func percentileCell(_ value: Double?, timedOut: Bool, limit: Double?) -> String {
        if let value {
            let over = limit.map { value > $0 } ?? false
            return "<td class=\"num\(over ? " over" : "")\">\(escape(formatSeconds(value)))</td>"
        }
        if timedOut {
            return "<td class=\"num over\" title=\"falls on a timed-out resume\">&gt; deadline</td>"
        }
        return "<td class=\"num muted\">—</td>"
    }

    private static func statsTable(_ rows: [ResumeStats], policy: PolicyReport, typeColumn: Bool) -> String {
        var out = "<div class=\"table-wrap\"><table class=\"stats\">\n<thead><tr>"
        if typeColumn { out += "<th>Instance type</th>" }
        out += "<th class=\"num\">Resumes</th><th class=\"num\">Completed</th><th class=\"num\">Timeouts</th>"
        out += "<th class=\"num\">Failed</th><th class=\"num\">In flight</th><th class=\"num\">Hibernation</th>"
        out += "<th class=\"num\">Cold</th><th class=\"num\">p50</th><th class=\"num\">p95</th><th class=\"num\">max</th>"
        if typeColumn { out += "<th>Objectives</th>" }
        out += "</tr></thead>\n<tbody>\n"
        for row in rows {
            out += "<tr>"
            if typeColumn { out += "<td><code>\(escape(row.instanceType ?? "—"))</code></td>" }
            out += "<td class=\"num\">\(row.count)</td><td class=\"num\">\(row.completed)</td>"
            out += "<td class=\"num\(row.timeouts > 0 ? " warn" : "")\">\(row.timeouts)</td>"
            out += "<td class=\"num\(row.failed > 0 ? " warn" : "")\">\(row.failed)</td>"
            out += "<td class=\"num\">\(row.inFlight)</td><td class=\"num\">\(row.hibernationResumes)</td>"
            out += "<td class=\"num\">\(row.coldBoots)</td>"
            out += percentileCell(row.p50, timedOut: row.p50TimedOut, limit: policy.objectives.p50)
            out += percentileCell(row.p95, timedOut: row.p95TimedOut, limit: policy.objectives.p95)
            out += percentileCell(row.max, timedOut: row.maxTimedOut, limit: policy.objectives.max)
            if typeColumn {
                switch row.objectivesMet {
                case true?: out += "<td><span class=\"tag ok\">met</span></td>"
                case false?: out += "<td><span class=\"tag bad\">violated</span></td>"
                case nil: out += "<td class=\"muted\">—</td>"
                }
            }
            out += "</tr>\n"
        }
        out += "</tbody>\n</table></div>\n"
        return out
    }

    /// How many instance ids a violation lists before "and N more".
    static let violationIDLimit = 20

    private static func violationsList(_ policy: PolicyReport) -> String {
        guard !policy.violations.isEmpty else {
            if policy.summary.objectivesMet == true {
                return "<p class=\"note ok-text\">Every objective is met.</p>\n"
            }
            return "<p class=\"note muted\">Nothing measured to hold to the objectives.</p>\n"
        }
        var out = "<ul class=\"violations\">\n"
        for violation in policy.violations {
            // Past 100 s formatSeconds drops the tenths; a measurement just
            // over its limit must not read as equal to it.
            let actual = violation.actual.map {
                !$0.isFinite || $0 < 99.95 || $0 >= hugeSeconds ? formatSeconds($0) : "\(decimal($0, places: 1)) s (\(formatSeconds($0)))"
            }
                ?? "> deadline"
            out += "<li><div class=\"violation-head\"><span class=\"objective\">\(escape(violation.objective))</span> "
            out += "limit <strong>\(escape(formatSeconds(violation.limit)))</strong>, actual <strong class=\"bad-text\">\(escape(actual))</strong>"
            let count = violation.instanceIDs.count
            if count > 0 {
                out += " <span class=\"muted\">· \(plural(count, "instance")) slower than the limit</span>"
            }
            out += "</div>"
            if count > 0 {
                out += "<div class=\"ids\">"
                out += violation.instanceIDs.prefix(violationIDLimit).map { "<code>\(escape($0))</code>" }.joined(separator: " ")
                if count > violationIDLimit {
                    out += " <span class=\"muted\">and \(count - violationIDLimit) more</span>"
                }
                out += "</div>"
            }
            out += "</li>\n"
        }
        out += "</ul>\n"
        return out
    }

    private static func slowestTable(_ policy: PolicyReport) -> String {
        guard !policy.slowest.isEmpty else {
            return "<p class=\"note muted\">No resumes to list.</p>\n"
        }
        var out = "<div class=\"table-wrap\"><table class=\"slowest\">\n<thead><tr>"
        out += "<th>Instance</th><th>Type</th><th>Zone</th><th>Mode</th><th>Started (UTC)</th>"
        out += "<th class=\"num\">Running</th><th class=\"num\">Status ok</th><th class=\"num\">Probe</th>"
        out += "<th class=\"num\">Resume time</th><th>Outcome</th><th>Last state</th>"
        out += "</tr></thead>\n<tbody>\n"
        func cell(_ value: Double?) -> String {
            guard let value else { return "<td class=\"num muted\">—</td>" }
            return "<td class=\"num\">\(escape(formatSeconds(value)))</td>"
        }
        for row in policy.slowest {
            let (date, time) = civil(row.startedAt)
            out += "<tr><td class=\"id\"><code>\(escape(row.instanceID))</code></td><td>\(escape(row.instanceType))</td>"
            out += "<td>\(escape(row.zone))</td><td>\(escape(row.mode))</td>"
            out += "<td>\(date) \(time)</td>"
            out += cell(row.running) + cell(row.statusOk) + cell(row.probe)
            if let seconds = row.resumeSeconds {
                let over = policy.objectives.max.map { seconds > $0 } ?? false
                out += "<td class=\"num strong\(over ? " over" : "")\">\(escape(formatSeconds(seconds)))</td>"
            } else if row.outcome == "timed-out" {
                out += "<td class=\"num strong over\">&gt; deadline</td>"
            } else {
                out += "<td class=\"num muted\">—</td>"
            }
            let outcomeClass: String
            switch row.outcome {
            case "complete": outcomeClass = "ok"
            case "timed-out", "failed": outcomeClass = "bad"
            default: outcomeClass = "neutral"
            }
            out += "<td><span class=\"tag \(outcomeClass)\">\(escape(row.outcome))</span></td>"
            out += "<td class=\"state\">\(row.lastState.map(escape) ?? "<span class=\"muted\">—</span>")</td></tr>\n"
        }
        out += "</tbody>\n</table></div>\n"
        return out
    }

    // MARK: - Chart

    /// Stroke colours of the phases, the same in every chart.
    static func colour(of phase: ResumePhase) -> String {
        switch phase {
        case .running: return "#5aa0d8"
        case .statusOk: return "#e8892b"
        case .probe: return "#6a3d9a"
        }
    }

    private static let metColour = "#1e8a3c"
    private static let violatedColour = "#d62728"
    private static let unknownColour = "#8a94a0"

    /// The end of the x axis and its tick step: the smallest "round" step
    /// that covers `value` in at most eight intervals.
    static func niceAxis(covering value: Double) -> (end: Double, step: Double) {
        let target = value.isFinite && value > 0 ? value : 1
        let steps: [Double] = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600,
                               7200, 10_800, 21_600, 43_200, 86_400]
        for step in steps {
            let intervals = (target / step - 1e-9).rounded(.up)
            if intervals <= 8 { return (max(1, intervals) * step, step) }
        }
        let step = 86_400 * (target / 86_400 / 8).rounded(.up)
        return (max(1, (target / step - 1e-9).rounded(.up)) * step, step)
    }

    static func tickLabel(_ value: Double, step: Double) -> String {
        if value == 0 { return "0" }
        guard value.isFinite else { return "—" }
        guard abs(value) < hugeSeconds else { return exponent(value) }
        if step < 1 { return decimal(value, places: 1) + " s" }
        if step < 60 { return "\(Int(value.rounded())) s" }
        let total = Int(value.rounded())
        let hours = total / 3600, minutes = total % 3600 / 60, seconds = total % 60
        var parts: [String] = []
        if hours > 0 { parts.append("\(hours)h") }
        if minutes > 0 { parts.append("\(minutes)m") }
        if seconds > 0 { parts.append("\(seconds)s") }
        return parts.joined(separator: " ")
    }

    /// Nearest-rank percentile of sorted values.
    private static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count - 1, max(0, rank - 1))]
    }

    private struct Label {
        var x: Double
        var text: String
        var colour: String
        var anchorEnd: Bool
        var row: Int = 0
        var extent: (Double, Double) {
            let width = Double(text.count) * 6.4 + 6
            return anchorEnd ? (x - 4 - width, x) : (x, x + 4 + width)
        }
    }

    private static func chartFigure(_ policy: PolicyReport, index: Int) -> String {
        let width = 1080.0
        let left = 62.0, right = 28.0, bottomMargin = 58.0, plotHeight = 270.0
        let plotWidth = width - left - right
        let objectives = policy.objectives

        // The data, sorted, finite and non-negative; phases in their order.
        let phases = policy.phases
            .sorted { $0.phase < $1.phase }
            .map { (phase: $0.phase, values: $0.seconds.filter(\.isFinite).map { Swift.max(0, $0) }.sorted()) }
        let measured = phases.map(\.values.count).max() ?? 0
        let population = Swift.max(policy.summary.count, measured)
        let allMax = phases.compactMap(\.values.last).max() ?? 0
        let objectiveLimits = [objectives.p50, objectives.p95, objectives.max].compactMap { $0 }.filter { $0.isFinite && $0 >= 0 }
        let objectiveMax = objectiveLimits.max() ?? 0
        let p99 = phases.compactMap { percentile($0.values, 0.99) }.max() ?? 0

        // Cap the axis so that a few huge outliers do not squash the rest.
        var needed = Swift.max(allMax, objectiveMax)
        if needed == 0 && policy.summary.count > 0 && measured == 0 { needed = policy.deadline }
        let cap = Swift.max(objectiveMax, p99 * 1.1)
        let span = needed > cap && cap > 0 ? cap : needed
        let axis = niceAxis(covering: span > 0 ? span * 1.04 : 1)
        let xEnd = axis.end

        func x(_ seconds: Double) -> Double { left + Swift.min(Swift.max(seconds, 0), xEnd) / xEnd * plotWidth }

        // Labels above the plot: objectives and, when on the axis, the deadline.
        var labels: [Label] = []
        let violated = Set(policy.violations.map(\.objective))
        func status(_ name: String) -> String {
            if violated.contains(name) { return violatedColour }
            if policy.summary.objectivesMet != nil { return metColour }
            return unknownColour
        }
        for (name, limit) in [("p50", objectives.p50), ("p95", objectives.p95), ("max", objectives.max)] {
            guard let limit, limit.isFinite, limit >= 0 else { continue }
            labels.append(Label(x: x(limit), text: "\(name) ≤ \(formatSeconds(limit))", colour: "#3d4852", anchorEnd: false))
        }
        let deadlineShown = policy.deadline > 0 && policy.deadline <= xEnd
        if deadlineShown {
            labels.append(Label(x: x(policy.deadline), text: "deadline \(formatSeconds(policy.deadline))", colour: violatedColour,
                                anchorEnd: false))
        }
        labels.sort { ($0.x, $0.text) < ($1.x, $1.text) }
        var rowEnds: [Double] = []
        for i in labels.indices {
            let startExtent = labels[i].extent
            if startExtent.1 > width - 4 { labels[i].anchorEnd = true }
            let (from, to) = labels[i].extent
            if let row = rowEnds.firstIndex(where: { $0 + 8 < from }) {
                labels[i].row = row
                rowEnds[row] = to
            } else {
                labels[i].row = rowEnds.count
                rowEnds.append(to)
            }
        }
        let top = 14.0 + Double(rowEnds.count) * 16

        // Legend, right-aligned under the axis.
        var legendItems: [(swatch: String, text: String)] = []
        for series in phases {
            var text = series.phase.label
            if series.phase == policy.readinessPhase { text += " (readiness)" }
            text += series.values.isEmpty ? ", no data" : ", n=\(series.values.count)"
            let strokeWidth = series.phase == policy.readinessPhase ? "2.75" : "1.75"
            legendItems.append(("<line x1=\"0\" x2=\"20\" y1=\"-4\" y2=\"-4\" stroke=\"\(colour(of: series.phase))\" stroke-width=\"\(strokeWidth)\"/>", text))
        }
        if !objectiveLimits.isEmpty {
            let statuses = [("p50", objectives.p50), ("p95", objectives.p95), ("max", objectives.max)]
                .filter { $0.1 != nil }
                .map { status($0.0) }
            for (colourValue, text) in [(metColour, "objective met"), (violatedColour, "objective violated"), (unknownColour, "objective (no data)")]
            where statuses.contains(colourValue) {
                legendItems.append(("<circle cx=\"10\" cy=\"-4\" r=\"5\" fill=\"\(colourValue)\"/>", text))
            }
        }
        func itemWidth(_ text: String) -> Double { 26 + Double(text.count) * 6.3 }
        let legendWidth = legendItems.map { itemWidth($0.text) + 16 }.reduce(0, +) - 16
        // On the axis title's row when it fits, else on a row of its own.
        let legendOwnRow = left + plotWidth - legendWidth < left + 210
        let height = top + plotHeight + bottomMargin + (legendOwnRow ? 20 : 0)
        let plotBottom = top + plotHeight
        func y(_ share: Double) -> Double { top + (1 - Swift.min(Swift.max(share, 0), 1)) * plotHeight }

        let titleID = "policy-\(index)-chart-title"
        var svg = "<svg class=\"cdf\" viewBox=\"0 0 \(coord(width)) \(coord(height))\" width=\"\(coord(width))\" height=\"\(coord(height))\" "
        svg += "role=\"img\" aria-labelledby=\"\(titleID)\">\n"
        svg += "<title id=\"\(titleID)\">Share of resumes that reached each phase within a given time, \(escape(policy.name))</title>\n"

        // Grid and axes.
        svg += "<g class=\"grid\">"
        for share in [0.25, 0.5, 0.75, 1.0] {
            svg += "<line x1=\"\(coord(left))\" x2=\"\(coord(left + plotWidth))\" y1=\"\(coord(y(share)))\" y2=\"\(coord(y(share)))\"/>"
        }
        var tick = axis.step
        while tick <= xEnd + axis.step * 1e-6 {
            svg += "<line x1=\"\(coord(x(tick)))\" x2=\"\(coord(x(tick)))\" y1=\"\(coord(top))\" y2=\"\(coord(plotBottom))\"/>"
            tick += axis.step
        }
        svg += "</g>\n<g class=\"axis\">"
        svg += "<line x1=\"\(coord(left))\" x2=\"\(coord(left + plotWidth))\" y1=\"\(coord(plotBottom))\" y2=\"\(coord(plotBottom))\"/>"
        svg += "<line x1=\"\(coord(left))\" x2=\"\(coord(left))\" y1=\"\(coord(top))\" y2=\"\(coord(plotBottom))\"/>"
        var tickIndex = 0.0
        while tickIndex * axis.step <= xEnd + axis.step * 1e-6 {
            let value = tickIndex * axis.step
            svg += "<line x1=\"\(coord(x(value)))\" x2=\"\(coord(x(value)))\" y1=\"\(coord(plotBottom))\" y2=\"\(coord(plotBottom + 5))\"/>"
            svg += "<text x=\"\(coord(x(value)))\" y=\"\(coord(plotBottom + 19))\" text-anchor=\"middle\">\(escape(tickLabel(value, step: axis.step)))</text>"
            tickIndex += 1
        }
        for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
            svg += "<text x=\"\(coord(left - 8))\" y=\"\(coord(y(share) + 4))\" text-anchor=\"end\">\(percent(share))</text>"
        }
        svg += "<text class=\"axis-title\" x=\"\(coord(left))\" y=\"\(coord(plotBottom + 44))\">seconds since start accepted →</text>"
        svg += "<text class=\"axis-title\" transform=\"translate(16 \(coord(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">share of resumes</text>"
        svg += "</g>\n"

        // Objective and deadline lines with their labels.
        svg += "<g class=\"limits\">"
        for label in labels {
            let labelY = 14.0 + Double(label.row) * 16
            let isDeadline = label.text.hasPrefix("deadline")
            svg += "<line class=\"\(isDeadline ? "deadline" : "objective")\" x1=\"\(coord(label.x))\" x2=\"\(coord(label.x))\" "
            svg += "y1=\"\(coord(labelY - 10))\" y2=\"\(coord(plotBottom))\"/>"
            let textX = label.anchorEnd ? label.x - 4 : label.x + 4
            svg += "<text x=\"\(coord(textX))\" y=\"\(coord(labelY))\" fill=\"\(label.colour)\"\(label.anchorEnd ? " text-anchor=\"end\"" : "")>"
            svg += "\(escape(label.text))</text>"
        }
        svg += "</g>\n"

        // The empirical CDF of each phase, as steps; the readiness phase last, on top.
        var clipped: [(phase: ResumePhase, count: Int, max: Double)] = []
        let drawOrder = phases.filter { $0.phase != policy.readinessPhase } + phases.filter { $0.phase == policy.readinessPhase }
        svg += "<g class=\"curves\">"
        for series in drawOrder where !series.values.isEmpty {
            let values = series.values
            var d = "M\(coord(x(0))) \(coord(y(0)))"
            var currentX = coord(x(0))
            var i = 0
            var reached = 0
            var steps: [(x: String, y: String)] = []
            while i < values.count, values[i] <= xEnd {
                var j = i
                while j < values.count, values[j] == values[i] { j += 1 }
                let px = coord(x(values[i]))
                let py = coord(y(Double(j) / Double(population)))
                if px != currentX { d += "H\(px)"; currentX = px }
                d += "V\(py)"
                steps.append((px, py))
                reached = j
                i = j
            }
            d += "H\(coord(left + plotWidth))"
            let isReadiness = series.phase == policy.readinessPhase
            svg += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(colour(of: series.phase))\" stroke-width=\"\(isReadiness ? "2.75" : "1.75")\" "
            svg += "stroke-linejoin=\"round\"/>"
            // With few distinct values, mark each step so single resumes stand out.
            if steps.count <= 12 {
                for step in steps {
                    svg += "<circle cx=\"\(step.x)\" cy=\"\(step.y)\" r=\"\(isReadiness ? "3.5" : "2.75")\" fill=\"\(colour(of: series.phase))\"/>"
                }
            }
            if reached < values.count {
                clipped.append((series.phase, values.count - reached, values.last ?? 0))
                let endY = y(Double(reached) / Double(population))
                let tipX = left + plotWidth
                svg += "<path d=\"M\(coord(tipX - 9)) \(coord(endY - 5))L\(coord(tipX)) \(coord(endY))L\(coord(tipX - 9)) \(coord(endY + 5))Z\" "
                svg += "fill=\"\(colour(of: series.phase))\"/>"
            }
        }
        svg += "</g>\n"

        // Objective points: the readiness curve should pass left of (above) them.
        svg += "<g class=\"points\">"
        for (name, limit, share) in [("p50", objectives.p50, 0.5), ("p95", objectives.p95, 0.95), ("max", objectives.max, 1.0)] {
            guard let limit, limit.isFinite, limit >= 0 else { continue }
            let px = x(limit), py = y(share)
            svg += "<line class=\"guide\" x1=\"\(coord(left))\" x2=\"\(coord(px))\" y1=\"\(coord(py))\" y2=\"\(coord(py))\"/>"
            svg += "<circle cx=\"\(coord(px))\" cy=\"\(coord(py))\" r=\"5.5\" fill=\"\(status(name))\" stroke=\"#fff\" stroke-width=\"2\">"
            svg += "<title>\(name): \(percent(share)) of resumes ready within \(escape(formatSeconds(limit)))</title></circle>"
        }
        svg += "</g>\n"

        var legend = ""
        var cursor = left + plotWidth
        let legendY = plotBottom + 44 + (legendOwnRow ? 20 : 0)
        for item in legendItems.reversed() {
            cursor -= itemWidth(item.text)
            legend = "<g transform=\"translate(\(coord(cursor)) \(coord(legendY)))\">\(item.swatch)"
                + "<text x=\"26\" y=\"0\">\(escape(item.text))</text></g>" + legend
            cursor -= 16
        }
        svg += "<g class=\"legend\">\(legend)</g>\n"
        svg += "</svg>"

        // Caption: how to read it, and what is not on it.
        var notes: [String] = []
        var reading = "Each curve shows the share of resumes (\(population) completed or timed out) that had reached that phase "
            + "by the time on the x axis."
        if !objectiveLimits.isEmpty {
            reading += " The large dots mark the objectives: the \(escape(policy.readinessPhase.label)) curve should pass to the left of them."
        }
        notes.append(reading)
        if policy.summary.timeouts > 0 {
            let consequence = measured == 0 ? "so there is no curve to draw" : "so the curves level off below 100%"
            notes.append("<span class=\"bad-text\">\(plural(policy.summary.timeouts, "resume")) timed out</span> "
                + "(deadline \(escape(formatSeconds(policy.deadline)))) and never reached readiness, \(consequence).")
        }
        if !clipped.isEmpty {
            let parts = clipped.map { "\(plural($0.count, "measurement")) of \(escape($0.phase.label)) (up to \(escape(formatSeconds($0.max))))" }
            notes.append("The axis stops at \(escape(formatSeconds(xEnd))); beyond it, marked ▸ at the right edge: "
                + parts.joined(separator: "; ") + ".")
        }
        var out = "<figure class=\"chart\">\n\(svg)\n<figcaption>"
        out += notes.map { "<p>\($0)</p>" }.joined()
        out += "</figcaption>\n</figure>\n"
        return out
    }

    // MARK: - Style and script

    private static let stylesheet = """
    :root {
      --fg: #1f2933; --muted: #66717e; --line: #dde2e8; --zebra: #f6f8fa; --head: #f0f3f6;
      --accent: #2563a8; --ok: #17692f; --ok-bg: #e1f3e6; --bad: #b42318; --bad-bg: #fdeceb;
      --neutral: #4b5563; --neutral-bg: #eceff3; --page: #f3f4f6;
    }
    * { box-sizing: border-box; }
    html { -webkit-text-size-adjust: 100%; }
    body {
      margin: 0; background: var(--page); color: var(--fg);
      font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
        "Liberation Sans", "DejaVu Sans", sans-serif;
    }
    main { max-width: 1160px; margin: 0 auto; padding: 28px 24px 40px; }
    h1 { font-size: 26px; line-height: 1.2; margin: 0 0 6px; font-weight: 650; letter-spacing: -0.01em; }
    h2 { font-size: 19px; margin: 0; font-weight: 650; overflow-wrap: anywhere; }
    h3 { font-size: 13px; margin: 22px 0 8px; font-weight: 650; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); }
    .overview h2 { margin-bottom: 10px; }
    .page-head .meta { margin: 0; color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 18px; }
    .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 20px 24px 22px; margin: 20px 0; }
    .policy-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
    .facts { display: flex; flex-wrap: wrap; gap: 8px 32px; margin: 12px 0 0; }
    .facts div { min-width: 0; }
    .facts dt { font-size: 11.5px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); }
    .facts dd { margin: 1px 0 0; overflow-wrap: anywhere; }
    code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 12.5px; }
    .table-wrap { overflow-x: auto; }
    table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13px; }
    th, td { padding: 5px 9px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
    td.wrap { white-space: normal; overflow-wrap: break-word; }
    td.id { white-space: normal; word-break: break-all; min-width: 150px; }
    td.state { white-space: normal; overflow-wrap: anywhere; min-width: 90px; }
    table.slowest { font-size: 12.5px; }
    table.slowest th, table.slowest td { padding: 5px 6px; }
    table.slowest code { font-size: 12px; }
    th { background: var(--head); color: var(--muted); font-weight: 600; font-size: 12px; }
    tbody tr:nth-child(even) { background: var(--zebra); }
    .num { text-align: right; }
    td.strong { font-weight: 600; }
    td.over { color: var(--bad); font-weight: 600; }
    td.warn { color: var(--bad); }
    .muted { color: var(--muted); }
    .bad-text { color: var(--bad); }
    .ok-text { color: var(--ok); }
    a { color: var(--accent); text-decoration: none; }
    a:hover { text-decoration: underline; }
    .badge, .tag { display: inline-block; border-radius: 999px; font-weight: 600; white-space: nowrap; }
    .badge { font-size: 12px; padding: 2px 10px; }
    .tag { font-size: 11.5px; padding: 0 8px; }
    .ok { color: var(--ok); background: var(--ok-bg); }
    .bad { color: var(--bad); background: var(--bad-bg); }
    .neutral { color: var(--neutral); background: var(--neutral-bg); }
    figure.chart { margin: 0; }
    svg.cdf { display: block; width: 100%; height: auto; max-width: 1080px; font-size: 11.5px; fill: #3d4852; }
    svg.cdf .grid line { stroke: #e9ecf0; stroke-width: 1; }
    svg.cdf .axis line { stroke: #9aa3ad; stroke-width: 1; }
    svg.cdf .axis-title { fill: var(--muted); font-size: 12px; }
    svg.cdf line.objective { stroke: #56606b; stroke-width: 1.25; stroke-dasharray: 5 4; }
    svg.cdf line.deadline { stroke: #d62728; stroke-width: 1.25; stroke-dasharray: 2 3; }
    svg.cdf line.guide { stroke: #8a94a0; stroke-width: 1; stroke-dasharray: 1 3; }
    svg.cdf .legend text { fill: #3d4852; }
    figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
    figcaption p { margin: 2px 0; }
    .placeholder { color: var(--muted); text-align: center; }
    .chart-empty { border: 1px dashed var(--line); border-radius: 6px; padding: 40px 16px; background: var(--zebra); }
    .empty-report .placeholder { margin: 20px 0; }
    .note { margin: 4px 0; }
    ul.violations { list-style: none; margin: 0; padding: 0; }
    ul.violations li { border-left: 3px solid var(--bad); background: var(--bad-bg); padding: 8px 12px; margin: 0 0 8px; border-radius: 0 6px 6px 0; }
    .violation-head .objective { font-weight: 700; margin-right: 4px; }
    .ids { margin-top: 6px; display: flex; flex-wrap: wrap; gap: 4px 6px; align-items: baseline; }
    .ids code { background: #fff; border: 1px solid #f3c7c2; border-radius: 4px; padding: 0 5px; white-space: nowrap; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
    footer { color: var(--muted); font-size: 12px; margin-top: 16px; }
    @media print {
      body { background: #fff; }
      main { max-width: none; padding: 0; }
      .card { border: none; padding: 0; margin: 0 0 24px; }
      section.policy + section.policy { break-before: page; }
      figure.chart, tr, ul.violations li { break-inside: avoid; }
      * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
      .table-wrap { overflow: visible; }
    }

    """

    /// Records script errors on the body, then checks that every policy with
    /// data has its chart and marks the page as rendered.
    private static let script = """
    (function () {
      "use strict";
      function record(message) {
        var target = document.body || document.documentElement;
        var previous = target.getAttribute("data-errors");
        target.setAttribute("data-errors", previous ? previous + "; " + message : String(message));
      }
      window.onerror = function (message, source, line) {
        record(String(message) + (line ? " (line " + line + ")" : ""));
        return false;
      };
      var missing = [];
      var sections = document.querySelectorAll("section.policy");
      for (var i = 0; i < sections.length; i++) {
        var section = sections[i];
        if (section.getAttribute("data-has-data") === "true" && !section.querySelector("svg.cdf")) {
          missing.push(section.id);
        }
      }
      if (missing.length > 0) {
        record("no chart in " + missing.join(", "));
        document.body.dataset.rendered = "incomplete";
      } else {
        document.body.dataset.rendered = "ok";
      }
    })();

    """
}
