import Foundation
public import Logging
import TorporAWS
public import TorporEC2
public import TorporFleet
public import TorporResume

/// Carries out one job. Idempotent by construction: every attempt selects
/// and plans from the fleet's current state, so an attempt that resumes
/// after a worker died finds the instances already done as "no action
/// needed" instead of replaying calls blindly.
public struct JobRunner: Sendable {
    public let ec2: EC2Client
    public let clock: any FleetClock
    public let executorOptions: FleetExecutor.Options
    public let logger: Logger
    /// Live numbers of the running job, for a display.
    public let progress: (@Sendable (FleetProgress) -> Void)?
    /// Follows every resume that a start job makes.
    public let resumes: ResumeTracker?

    public init(ec2: EC2Client, clock: any FleetClock, executorOptions: FleetExecutor.Options, logger: Logger,
                progress: (@Sendable (FleetProgress) -> Void)? = nil, resumes: ResumeTracker? = nil) {
        self.ec2 = ec2
        self.clock = clock
        self.executorOptions = executorOptions
        self.logger = logger
        self.progress = progress
        self.resumes = resumes
    }

    /// Returns the result to store (JSON), or throws a `JobError`.
    public func run(kind: String, payload text: String, payloadVersion: Int, jobID: String? = nil) async throws -> String {
        // The kind first: a payload means nothing under an unknown kind.
        guard JobKind.all.contains(kind) else {
            throw JobError.permanent("unknown job kind '\(kind)' (this worker knows \(JobKind.all.joined(separator: ", ")))")
        }
        let payload = try FleetJobPayload.decode(text, version: payloadVersion)
        let action: FleetAction = kind == JobKind.fleetStart ? .start : payload.hibernate ? .hibernate : .stop
        guard !payload.selector.isEmpty else { throw JobError.permanent("the payload selects no instances (empty selector)") }

        let selection: FleetSelection
        do {
            selection = try await FleetSelection.resolve(ec2, payload.selector)
        } catch {
            throw classify(error, doing: "describe the fleet")
        }
        let spot = action == .start ? (types: [String: String](), calls: 0)
            : await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
        let plan = Planner.plan(action, instances: selection.instances, missing: selection.missing,
                                spotRequestTypes: spot.types, rules: payload.rules())
        if let refusal = plan.blastRadiusRefusal {
            throw JobError.permanent("plan refused: \(refusal)")
        }
        var options = executorOptions
        options.dryRun = payload.dryRun
        // Stop jobs always confirm their outcome; a start job may opt out.
        options.waitForFinalStates = action != .start || payload.wait
        let report: FleetReport
        do {
            var startsAccepted: (@Sendable (AcceptedStarts) async -> Void)?
            if let tracker = resumes {
                startsAccepted = { starts in await tracker.register(starts, jobID: jobID) }
            }
            report = try await FleetExecutor(ec2: ec2, clock: clock, options: options, progress: progress,
                                             startsAccepted: startsAccepted).execute(plan)
        } catch {
            throw classify(error, doing: "carry out the plan")
        }
        let result = Self.encode(report)
        // Instances EC2 does not know will not appear by trying again; any
        // other failure may clear (capacity, a transient error).
        let retryable = report.results.filter { $0.outcome == .failed && !($0.errorCode ?? "").hasPrefix("InvalidInstanceID") }
        if !retryable.isEmpty {
            throw JobFailure(error: .transient("\(retryable.count) of \(report.results.count) instance(s) failed: "
                                               + retryable.prefix(3).map { "\($0.instanceID) \($0.errorCode ?? "")" }.joined(separator: ", ")),
                             result: result)
        }
        return result
    }

    func classify(_ error: any Error, doing: String) -> JobError {
        switch error {
        case let error as JobError: return error
        case let error as AWSServiceError:
            let permanent: Set<String> = ["AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch", "InvalidClientTokenId", "OptInRequired"]
            return permanent.contains(error.code) ? .permanent("cannot \(doing): \(error)") : .transient("cannot \(doing): \(error)")
        case let error as CredentialError: return .permanent("cannot \(doing): \(error.message)")
        case is CancellationError: return .transient("interrupted")
        default: return .transient("cannot \(doing): \(error)")
        }
    }

    static func encode(_ report: FleetReport) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        struct Stored: Encodable {
            let action: String
            let dryRun: Bool
            let counts: [String: Int]
            let calls: Int
            let throttled: Int
            let instances: [InstanceResult]
        }
        let stored = Stored(action: report.action.rawValue, dryRun: report.dryRun, counts: report.counts, calls: report.calls,
                            throttled: report.throttled, instances: report.results)
        return String(decoding: (try? encoder.encode(stored)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// A failed attempt that still produced a result worth keeping.
public struct JobFailure: Error, Sendable {
    public let error: JobError
    public let result: String
}
