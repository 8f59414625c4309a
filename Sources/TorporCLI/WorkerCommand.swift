import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import TorporAWS
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporResume
import TorporWorker
import TorporYAML
import UnixSignals

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the daemon that carries out queued jobs.",
        discussion: """
        Claims jobs from the queue (a lease each, renewed while it works), carries them out with \
        the fleet engine, and records each one's outcome. Follows every resume a start makes \
        (phase by phase, against the resume policies of the configuration) and picks up resumes \
        that a killed worker or an interrupted `torpor start` left in flight. Serves /metrics (Prometheus) and \
        /healthz. SIGTERM or SIGINT: stop claiming, let running jobs finish for the grace period, \
        then release their leases so the next start picks them up; exit 0.

        Settings come from --config (see Config/torpor.yaml), overridden by flags; AWS \
        credentials, region and endpoint follow the AWS CLI's conventions.
        """
    )

    @OptionGroup var location: QueueLocation
    @Option(help: "Jobs carried out at once.") var concurrency: Int?
    @Option(help: ArgumentHelp("Address for /metrics and /healthz, or 'off'.", valueName: "HOST:PORT")) var metrics: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if let concurrency, !(1...64).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 64") }
        if let metrics, metrics != "off", TorporConfiguration.parseAddress(metrics) == nil {
            throw ValidationError("--metrics must be HOST:PORT (like 127.0.0.1:9464) or off")
        }
    }

    func run() async throws {
        var configuration = try location.configuration()
        if let concurrency { configuration.worker.concurrency = concurrency }
        if let metrics {
            if metrics == "off" {
                configuration.metrics.enabled = false
            } else if let (host, port) = TorporConfiguration.parseAddress(metrics) {
                configuration.metrics.enabled = true
                configuration.metrics.host = host
                configuration.metrics.port = port
            }
        }
        var connection = self.connection
        connection.region = connection.region ?? configuration.aws.region
        connection.profile = connection.profile ?? configuration.aws.profile
        connection.endpointURL = connection.endpointURL ?? configuration.aws.endpointURL

        let level = connection.logLevel.level == .warning ? Logger.Level(rawValue: configuration.logLevel) ?? .info : connection.logLevel.level
        let logger = ClientFactory.logger(level)
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[ResumeMetrics.histogramLabel] = ResumeMetrics.buckets.map { .milliseconds(Int64($0 * 1000)) }
        MetricsSystem.bootstrap(factory)
        let workerMetrics = WorkerMetrics()

        let queue = try SQLiteJobQueue(path: location.queue ?? configuration.queue.path)
        let ec2 = try ClientFactory.ec2(connection, retryThrottling: false, observer: { workerMetrics.ec2Call($0) })
        var options = FleetExecutor.Options()
        options.firstPoll = configuration.fleet.firstPoll
        options.waitDeadline = configuration.fleet.waitTimeout
        options.tagInstances = configuration.fleet.tagInstances
        // Its rows are its own (worker@HOST:PID); a restarted worker sees
        // that its predecessor's process is gone and takes them at once.
        var trackerSettings = ResumeTracker.Settings(configuration.resume)
        trackerSettings.keepFinished = false
        trackerSettings.ownerGone = { TrackerOwner.isGone($0) }
        let tracker = ResumeTracker(
            ec2: ec2, clock: WallFleetClock(), store: try ResumeStore(queue: queue), policies: configuration.resume,
            prober: NetworkProber(transport: CurlTransport()), owner: TrackerOwner.current("worker"),
            settings: trackerSettings, logger: logger)
        let runner = JobRunner(ec2: ec2, clock: WallFleetClock(), executorOptions: options, logger: logger, resumes: tracker)

        var settings = QueueConsumer.Settings()
        settings.concurrency = configuration.worker.concurrency
        settings.lease = configuration.worker.lease
        settings.gracePeriod = configuration.worker.gracePeriod
        settings.pollInterval = configuration.worker.pollInterval
        settings.retryBase = configuration.worker.retryBase
        let owner = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        let consumer = QueueConsumer(queue: queue, runner: runner, owner: owner, settings: settings, metrics: workerMetrics, logger: logger)

        // Started in this order, stopped in reverse: the consumer stops (and
        // releases its jobs) first, the store last.
        var services: [any Service] = [QueueStore(queue: queue, logger: logger),
                                       QueueGauges(queue: queue, metrics: workerMetrics, logger: logger),
                                       ResumeTracking(tracker: tracker, logger: logger), consumer]
        var where_ = "metrics off"
        if configuration.metrics.enabled {
            let host = configuration.metrics.host
            services.insert(MetricsEndpoint.application(registry: registry, host: host, port: configuration.metrics.port, logger: logger,
                                                        health: { (try? await queue.jobs(state: nil, limit: 1)) != nil },
                                                        onReady: { port in printError("torpor worker: metrics on http://\(host):\(port)/metrics") }),
                            at: 1)
            where_ = "metrics on \(host):\(configuration.metrics.port)"
        }
        printError("torpor worker \(owner): queue \(queue.path), concurrency \(settings.concurrency), \(where_)")
        let group = ServiceGroup(configuration: .init(
            services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check configuration files.",
        subcommands: [Validate.self]
    )

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Report every problem in a configuration file, each with its line.")
        @Argument(help: "The file (YAML).") var file: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw CommandFailure.usage("cannot read '\(file)'") }
            let (configuration, problems) = TorporConfiguration.validate(String(decoding: data, as: UTF8.self), file: file)
            for warning in configuration.warnings { print("\(warning.description) (warning)") }
            if problems.isEmpty {
                print("\(file): valid" + (configuration.warnings.isEmpty ? "" : " with \(configuration.warnings.count) warning(s)"))
                return
            }
            for problem in problems { print(problem.description) }
            throw CommandFailure.usage("\(problems.count) problem(s) in \(file)")
        }
    }
}
