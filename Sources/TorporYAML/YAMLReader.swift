import Foundation
public import Yams

/// A problem in a YAML file: which file, which line, what.
public struct YAMLFileError: Error, Sendable, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// Reads YAML into typed values, rejecting unknown keys (a typo must not
/// be silently ignored) and naming the line of every problem.
public struct YAMLReader: Sendable {
    public let file: String

    public init(file: String) { self.file = file }

    public func load(_ text: String) throws(YAMLFileError) -> Node {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw YAMLFileError(file: file, line: nil, message: "the file is empty")
            }
            return node
        } catch let error as YAMLFileError {
            throw error
        } catch let error as YamlError {
            throw YAMLFileError(file: file, line: Self.line(of: error), message: "not valid YAML: \(error)")
        } catch {
            throw YAMLFileError(file: file, line: nil, message: "not valid YAML: \(error)")
        }
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    public func fail(_ node: Node?, _ message: String) -> YAMLFileError {
        YAMLFileError(file: file, line: node?.mark?.line, message: message)
    }

    /// A mapping's entries by key, refusing keys outside `allowed`.
    public func mapping(_ node: Node, _ context: String, allowed: [String]) throws(YAMLFileError) -> [String: Node] {
        guard case .mapping(let mapping) = node else { throw fail(node, "\(context) must be a mapping") }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw fail(keyNode, "\(context): keys must be text") }
            guard allowed.contains(key) else {
                throw fail(keyNode, "\(context): unknown key '\(key)' (expected one of: \(allowed.joined(separator: ", ")))")
            }
            guard result[key] == nil else { throw fail(keyNode, "\(context): key '\(key)' appears twice") }
            result[key] = value
        }
        return result
    }

    /// Like `mapping`, but an unknown or repeated key is reported and
    /// skipped instead of stopping the reading, so that a validator can
    /// report every problem at once.
    public func lenientMapping(_ node: Node, _ context: String, allowed: [String]) throws(YAMLFileError) -> ([String: Node], [YAMLFileError]) {
        guard case .mapping(let mapping) = node else { throw fail(node, "\(context) must be a mapping") }
        var result: [String: Node] = [:]
        var problems: [YAMLFileError] = []
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else {
                problems.append(fail(keyNode, "\(context): keys must be text"))
                continue
            }
            if !allowed.contains(key) {
                problems.append(fail(keyNode, "\(context): unknown key '\(key)' (expected one of: \(allowed.joined(separator: ", ")))"))
            } else if result[key] != nil {
                problems.append(fail(keyNode, "\(context): key '\(key)' appears twice"))
            } else {
                result[key] = value
            }
        }
        return (result, problems)
    }

    public func sequence(_ node: Node, _ context: String) throws(YAMLFileError) -> [Node] {
        guard case .sequence(let sequence) = node else { throw fail(node, "\(context) must be a list") }
        return Array(sequence)
    }

    public func string(_ node: Node, _ context: String) throws(YAMLFileError) -> String {
        guard case .scalar(let scalar) = node else { throw fail(node, "\(context) must be text") }
        return scalar.string
    }

    public func int(_ node: Node, _ context: String, range: ClosedRange<Int>) throws(YAMLFileError) -> Int {
        let text = try string(node, context)
        guard let value = Int(text) else { throw fail(node, "\(context) must be a whole number, not '\(text)'") }
        guard range.contains(value) else { throw fail(node, "\(context) must be between \(range.lowerBound) and \(range.upperBound), not \(value)") }
        return value
    }

    public func double(_ node: Node, _ context: String, range: ClosedRange<Double>) throws(YAMLFileError) -> Double {
        let text = try string(node, context)
        guard let value = Double(text), value.isFinite else { throw fail(node, "\(context) must be a number, not '\(text)'") }
        guard range.contains(value) else { throw fail(node, "\(context) must be between \(range.lowerBound) and \(range.upperBound), not \(text)") }
        return value
    }

    public func fraction(_ node: Node, _ context: String) throws(YAMLFileError) -> Double {
        try double(node, context, range: 0...1)
    }

    public func bool(_ node: Node, _ context: String) throws(YAMLFileError) -> Bool {
        switch try string(node, context).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw fail(node, "\(context) must be true or false, not '\(other)'")
        }
    }

    /// The longest duration any file may give (100 years, in seconds):
    /// beyond it a value is a typo, and durations turned into milliseconds or
    /// nanoseconds further on must stay within a 64-bit integer.
    public static let longestDuration: Double = 100 * 365 * 86_400

    /// `90s`, `1.5m`, `2h`, `250ms`, `1d`, or a plain number of seconds; at
    /// most `max` seconds (and never more than `longestDuration`).
    public func duration(_ node: Node, _ context: String, max: Double = YAMLReader.longestDuration) throws(YAMLFileError) -> Double {
        let text = try string(node, context).trimmingCharacters(in: .whitespaces)
        guard let seconds = Self.parseDurationUnbounded(text) else {
            throw fail(node, "\(context) must be a duration like 30s, 2m, 1h or 250ms, not '\(text)'")
        }
        let limit = Swift.min(max, Self.longestDuration)
        guard seconds <= limit else {
            throw fail(node, "\(context) must be at most \(Self.describeDuration(limit)), not '\(text)'")
        }
        return seconds
    }

    /// Seconds, or nil for anything else: the number must be finite and not
    /// negative, and so must the number of seconds it stands for (`1e308d`
    /// is not a duration).
    public static func parseDuration(_ text: String) -> Double? {
        guard let seconds = parseDurationUnbounded(text), seconds.isFinite else { return nil }
        return seconds
    }

    /// Like `parseDuration`, but a finite number whose seconds overflow
    /// (`1e308d`) is +infinity rather than nil, so that a caller can say the
    /// duration is too long instead of not a duration.
    public static func parseDurationUnbounded(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if suffix == "s", number.hasSuffix("m") { continue } // "ms" handled above
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return value * scale
        }
        guard let value = Double(text), value >= 0, value.isFinite else { return nil }
        return value
    }

    /// A number of seconds in the largest unit that divides it evenly:
    /// `365d`, `1m`, `100ms`, `2.5s`.
    public static func describeDuration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "\(seconds)" }
        for (suffix, scale) in [("d", 86_400.0), ("h", 3600), ("m", 60), ("s", 1)] where seconds >= scale {
            let count = seconds / scale
            if count == count.rounded(), count < 1e15 { return String(format: "%.0f", count) + suffix }
        }
        let milliseconds = seconds * 1000
        if milliseconds == milliseconds.rounded(), milliseconds < 1000 { return String(format: "%.0f", milliseconds) + "ms" }
        return "\(seconds)s"
    }
}

