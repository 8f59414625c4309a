import ArgumentParser
import Foundation
import Logging
import TorporSigV4
import TorporSim

struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a simulated EC2 fleet on loopback, for tests, rehearsals and the demo.",
        discussion: """
        Speaks the EC2 Query API (describe, stop with hibernation, start, tags, status, spot \
        prices, instance types) with realistic lifecycle timings, hibernation rules, EC2's \
        throttling, spot prices and injected faults. Prints one line when ready:
          listening on http://127.0.0.1:PORT
        and stops cleanly on SIGTERM or SIGINT.

        Ground truth and control, JSON on the same port (loopback only, unsigned):
          GET  /_sim/events[?since=N&instance=ID]   every transition with its simulated time and cause
          GET  /_sim/stats                          calls, throttles and errors per action, states
          POST /_sim/spot    {"instanceType","zone","product"?,"price"}
          POST /_sim/faults  {"errorRate","resetRate","lostReplyRate","latency","noCapacity","startFailureRate"}
          POST /_sim/fleet   {"groups": [...]} or {"interrupt": {"instanceIds": [...], "behavior": "stop|hibernate|terminate"}}

        Point Torpor at it:
          AWS_ACCESS_KEY_ID=AKIDTORPORSIMULATOR AWS_SECRET_ACCESS_KEY=torpor-simulator-secret-key \\
          torpor describe --endpoint-url http://127.0.0.1:4566 --region us-east-1
        The fleet file (default: the embedded Config/sim-fleet.yaml) is documented in that file.
        """
    )

    @Option(help: "Address to listen on. The control API answers only loopback clients.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 4566
    @Option(help: "Fleet file (YAML). Default: the embedded Config/sim-fleet.yaml.")
    var fleet: String?
    @Option(help: "Simulated seconds per real second.")
    var speed = 1.0
    @Option(help: "aws (EC2's documented buckets), off, or a throttle file (YAML).")
    var throttle = "aws"
    @Option(help: "Overrides the fleet file's seed.")
    var seed: UInt64?
    @Option(help: "on: check SigV4 signatures against the fleet file's credentials; off: accept anything.")
    var auth = "on"
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelArgument = .warning

    func validate() throws {
        guard speed > 0, speed.isFinite, speed <= 100_000 else { throw ValidationError("--speed must be above 0 and at most 100000") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard auth == "on" || auth == "off" else { throw ValidationError("--auth must be on or off, not '\(auth)'") }
    }

    func run() async throws {
        var spec: FleetSpec
        if let fleet {
            guard let data = FileManager.default.contents(atPath: fleet) else {
                throw CommandFailure.usage("--fleet: cannot read '\(fleet)'")
            }
            spec = try FleetSpec.parse(String(decoding: data, as: UTF8.self), file: fleet)
        } else {
            spec = DefaultFleet.spec()
        }
        if let seed { spec.seed = seed }
        if auth == "on" && spec.credentials.isEmpty {
            throw CommandFailure.usage("the fleet file has no credentials; add some or run with --auth off")
        }
        let throttleConfig: ThrottleConfig
        switch throttle {
        case "aws": throttleConfig = .aws
        case "off": throttleConfig = .off
        default:
            guard let data = FileManager.default.contents(atPath: throttle) else {
                throw CommandFailure.usage("--throttle: expected aws, off or a readable file, not '\(throttle)'")
            }
            throttleConfig = try ThrottleConfig.parse(String(decoding: data, as: UTF8.self), file: throttle)
        }
        let logger = ClientFactory.logger(logLevel.level)
        if !(host.hasPrefix("127.") || host == "localhost" || host == "::1") {
            logger.warning("listening beyond loopback; the /_sim control API still answers loopback clients only", metadata: ["host": "\(host)"])
        }
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: speed), throttle: throttleConfig,
                               authenticate: auth == "on", probes: true)
        let count = engine.instances().count
        let keys = spec.credentials.map(\.accessKeyID).joined(separator: ", ")
        let host = self.host
        let summary = "\(count) instances in \(spec.groups.count) groups, region \(spec.region), speed \(speed)x, "
            + "throttle \(throttle), auth \(auth == "on" ? "on (access keys: \(keys))" : "off")"
        try await SimServer.run(engine: engine, host: host, port: port, logger: logger, handleSignals: true) { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            // Written straight to the descriptor: a script waits for this
            // line, and stdout may be a pipe that buffers.
            FileHandle.standardOutput.write(Data("listening on http://\(shown):\(port)\n".utf8))
            printError("torpor sim: \(summary)")
        }
    }
}
