import Foundation
import TorporAWS
import TorporEC2
import TorporPolicies
import TorporSigV4

/// Benchmarks, run from a release build:
///   torpor-bench sign --seconds S
/// Each prints one JSON line.
enum Bench {
    static func main() async -> Int32 {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first else {
            printUsage()
            return 2
        }
        arguments.removeFirst()
        func usage(_ error: BenchUsageError) -> Int32 {
            FileHandle.standardError.write(Data("torpor-bench \(name): \(error.message)\n".utf8))
            printUsage()
            return 2
        }
        switch name {
        case "sign":
            let options: [String: Double]
            do { options = try numericOptions(arguments, allowed: [.seconds]) } catch { return usage(error) }
            SignBenchmark.run(seconds: options["--seconds"] ?? 3)
            return 0
        case "sim":
            let options: [String: Double]
            do { options = try numericOptions(arguments, allowed: [.instances(atLeast: 1), .seconds]) } catch { return usage(error) }
            do {
                try await SimBenchmark.run(instances: Int(options["--instances"] ?? 10_000), seconds: options["--seconds"] ?? 5)
                return 0
            } catch {
                FileHandle.standardError.write(Data("torpor-bench sim: \(error)\n".utf8))
                return 1
            }
        case "fleet":
            let options: [String: Double]
            do { options = try numericOptions(arguments, allowed: [.instances(atLeast: 100), .speed]) } catch { return usage(error) }
            do {
                return try await FleetBenchmark.run(instances: Int(options["--instances"] ?? 10_000), speed: options["--speed"] ?? 40) ? 0 : 1
            } catch {
                FileHandle.standardError.write(Data("torpor-bench fleet: \(error)\n".utf8))
                return 1
            }
        case "queue":
            let options: [String: Double]
            do { options = try numericOptions(arguments, allowed: [.jobs]) } catch { return usage(error) }
            do {
                try await QueueBenchmark.run(jobs: Int(options["--jobs"] ?? 5000))
                return 0
            } catch {
                FileHandle.standardError.write(Data("torpor-bench queue: \(error)\n".utf8))
                return 1
            }
        case "resume":
            let options: [String: Double]
            do {
                options = try numericOptions(arguments, allowed: [.instances(atLeast: 10), .speed, .pollInterval, .describeRate])
            } catch { return usage(error) }
            do {
                return try await ResumeBenchmark.run(
                    instances: Int(options["--instances"] ?? 1000), speed: options["--speed"] ?? 1,
                    pollInterval: options["--poll-interval"] ?? 2, describeRate: options["--describe-rate"] ?? 10) ? 0 : 1
            } catch {
                FileHandle.standardError.write(Data("torpor-bench resume: \(error)\n".utf8))
                return 1
            }
        case "-h", "--help", "help":
            printUsage()
            return 0
        default:
            FileHandle.standardError.write(Data("torpor-bench: unknown benchmark '\(name)'\n".utf8))
            printUsage()
            return 2
        }
    }

    /// `--name value` pairs, each value a finite number within its option's
    /// range (and whole where the option counts something); a
    /// `BenchUsageError` naming the option otherwise.
    static func numericOptions(_ arguments: [String], allowed: [NumericOption]) throws(BenchUsageError) -> [String: Double] {
        var options: [String: Double] = [:]
        var index = 0
        while index < arguments.count {
            let name = arguments[index]
            guard let option = allowed.first(where: { $0.name == name }) else {
                let known = allowed.map(\.name).joined(separator: ", ")
                throw BenchUsageError(message: "unknown option '\(name)'" + (known.isEmpty ? " (this benchmark takes none)" : " (expected one of: \(known))"))
            }
            guard index + 1 < arguments.count else { throw BenchUsageError(message: "\(name) needs a value") }
            let text = arguments[index + 1]
            guard options[name] == nil else { throw BenchUsageError(message: "\(name) is given twice") }
            options[name] = try option.value(text)
            index += 2
        }
        return options
    }

    static func printUsage() {
        FileHandle.standardError.write(Data("""
        usage: torpor-bench sign [--seconds S]
               torpor-bench sim [--instances N] [--seconds S]
               torpor-bench fleet [--instances N] [--speed X]
               torpor-bench queue [--jobs N]
               torpor-bench resume [--instances N] [--speed X] [--poll-interval S] [--describe-rate R]
          sign   SigV4 header signing of a 10-instance StopInstances request through the
                 client's signing path (key cache warm); prints
                 {"benchmark":"sign","ns_per_op":N,"ops_per_sec":M}
          sim    the fleet simulator's own throughput: DescribeInstances pages of 1000 over
                 N instances (default 10000), through HTTP and Torpor's client, signatures
                 checked; prints {"benchmark":"sim","instances":N,"pages_per_sec":P,
                 "instances_per_sec":I,"engine_pages_per_sec":E}
          fleet  hibernates the half of N instances (default 10000) tagged for it on the
                 simulator (EC2's throttling, speed X, default 40), then starts them again;
                 one JSON line per phase: phase, instances, dispatch_s, bound_s, ratio,
                 settle_s, calls, min_calls, throttled, outcomes, incorrect (simulated seconds)
          queue  enqueues N empty jobs (default 5000) on a new SQLite queue, then claims and
                 completes each; prints {"benchmark":"queue","jobs":N,"jobs_per_sec":M}
          resume starts N instances at once (default 1000: hibernated web, API and batch
                 tiers with TCP, HTTP and status-check readiness, and cold-stopped legacy
                 ones) on the simulator at speed X (default 1), follows every resume with the
                 tracker (poll interval S, default 2; R describe calls/s, default 10), and
                 compares every measured phase with the simulator's ground truth; prints
                 instances, poll_interval_s, max_error_s, mean_error_s, calls,
                 calls_per_instance, and more (simulated seconds). Exits 1 if any error or
                 percentile is off by more than the poll interval

        """.utf8))
    }
}

/// A command-line mistake: the message names the option and what it takes.
struct BenchUsageError: Error {
    let message: String
}

/// A numeric option of a benchmark and the values it takes: finite, within
/// `range`, and whole when it counts something. `Int(...)`, `Duration` and
/// the clocks are only ever given such values.
struct NumericOption {
    let name: String
    let range: ClosedRange<Double>
    let whole: Bool

    func value(_ text: String) throws(BenchUsageError) -> Double {
        let what = whole ? "a whole number" : "a number"
        let bounds = "\(Self.shown(range.lowerBound)) to \(Self.shown(range.upperBound))"
        guard let value = Double(text), value.isFinite, range.contains(value), !whole || value == value.rounded() else {
            throw BenchUsageError(message: "\(name) must be \(what) from \(bounds), not '\(text)'")
        }
        return value
    }

    static func shown(_ value: Double) -> String {
        value == value.rounded() ? String(format: "%.0f", value) : "\(value)"
    }

    /// Real seconds a benchmark runs for.
    static let seconds = NumericOption(name: "--seconds", range: 0.1...3600, whole: false)
    /// Simulated instances.
    static func instances(atLeast least: Double) -> NumericOption {
        NumericOption(name: "--instances", range: least...1_000_000, whole: true)
    }
    /// Simulated seconds per real second.
    static let speed = NumericOption(name: "--speed", range: 0.1...10_000, whole: false)
    static let jobs = NumericOption(name: "--jobs", range: 1...10_000_000, whole: true)
    /// The tracker's, as `resume.pollInterval` takes it.
    static let pollInterval = NumericOption(name: "--poll-interval", range: ResumeSettings.pollIntervalRange, whole: false)
    /// The tracker's, as `resume.describeRate` takes it.
    static let describeRate = NumericOption(name: "--describe-rate", range: ResumeSettings.describeRateRange, whole: false)
}

/// Signs the StopInstances request: the same request value and
/// signer call that `AWSQueryClient.send` makes.
enum SignBenchmark {
    static func run(seconds: Double) {
        var parameters = QueryParameters(action: "StopInstances", version: EC2Client.apiVersion)
        parameters.set("Hibernate", true)
        parameters.setList("InstanceId", (0..<10).map { "i-0123456789abcdef\($0)" })
        let body = parameters.formEncoded
        let url = RequestURL(scheme: "https", host: "ec2.us-east-1.amazonaws.com")
        let signer = SigV4Signer(region: "us-east-1", service: "ec2")
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        let date = SigningDate(secondsSinceEpoch: 1_764_000_000)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
        let request = SigV4Request(method: "POST", url: url, headers: headers, payload: .bytes(body))

        var sink = 0
        // Warm the key cache and the context pool.
        for _ in 0..<1000 { sink &+= signer.sign(request, credentials: credentials, date: date).authorization.utf8.count }

        let clock = ContinuousClock()
        let budget = Duration.seconds(seconds)
        var operations = 0
        let started = clock.now
        var elapsed = Duration.zero
        while elapsed < budget {
            for _ in 0..<1000 {
                sink &+= signer.sign(request, credentials: credentials, date: date).authorization.utf8.count
            }
            operations += 1000
            elapsed = clock.now - started
        }
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        let perOp = nanoseconds / Double(operations)
        precondition(sink > 0)
        print("{\"benchmark\":\"sign\",\"ns_per_op\":\(Int(perOp.rounded())),\"ops_per_sec\":\(Int((1e9 / perOp).rounded()))}")
    }
}

exit(await Bench.main())
