import Foundation
import TorporEC2
public import TorporFleet

/// The job kinds the worker carries out.
public enum JobKind {
    public static let fleetStop = "fleet.stop"
    public static let fleetStart = "fleet.start"
    public static let all = [fleetStop, fleetStart]
}

/// The payload of `fleet.stop` and `fleet.start` jobs, version 1.
public struct FleetJobPayload: Codable, Sendable, Equatable {
    public static let version = 1

    public var selector: FleetSelector
    /// Stop jobs: hibernate rather than stop.
    public var hibernate = false
    public var fallback = HibernationFallback.stop
    public var force = false
    public var dryRun = false
    public var maxInstances = 1000
    public var maxShare = 1.0
    public var overrideBlastRadius = false
    public var protectTagKey = "torpor:protect"
    public var protectTagValue = "true"
    /// Start jobs: wait for running (the outcome is confirmed either way
    /// for stop jobs).
    public var wait = true

    public init(selector: FleetSelector) {
        self.selector = selector
    }

    public func rules() -> PlanRules {
        PlanRules(protectTagKey: protectTagKey, protectTagValue: protectTagValue, hibernationFallback: fallback,
                  maxInstances: maxInstances, maxShare: maxShare, overrideBlastRadius: overrideBlastRadius, force: force)
    }

    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Decodes a stored payload; the error says what is wrong with it.
    public static func decode(_ text: String, version: Int) throws(JobError) -> FleetJobPayload {
        guard version == Self.version else {
            throw JobError.permanent("payload version \(version) is not supported (this worker reads version \(Self.version))")
        }
        do {
            return try JSONDecoder().decode(FleetJobPayload.self, from: Data(text.utf8))
        } catch let DecodingError.keyNotFound(key, _) {
            throw JobError.permanent("payload is missing '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw JobError.permanent("payload has a wrong type at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'")
        } catch let DecodingError.dataCorrupted(context) {
            throw JobError.permanent("payload is not valid JSON: \(context.debugDescription)")
        } catch {
            throw JobError.permanent("payload cannot be read: \(error)")
        }
    }
}

/// Why a job did not succeed, and whether another attempt could help.
public struct JobError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// Worth another attempt (throttling, a transient failure, instances
    /// that failed this time); false for a bad payload or a refused plan.
    public let retryable: Bool

    public static func permanent(_ message: String) -> JobError { JobError(message: message, retryable: false) }
    public static func transient(_ message: String) -> JobError { JobError(message: message, retryable: true) }

    public var description: String { message }
}
