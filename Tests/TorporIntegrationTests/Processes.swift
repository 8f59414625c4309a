import Foundation
import Synchronization
import Testing
import TorporTestSupport

/// Paths the integration tests need.
enum TestPaths {
    /// The checkout's root, from this file's place in it.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let support = root.appendingPathComponent("Tests/Support")

    /// The `torpor` binary built beside the test bundle.
    static var torpor: String { binary("torpor") }

    /// The `torpor-bench` binary built beside the test bundle.
    static var bench: String { binary("torpor-bench") }

    static func binary(_ name: String) -> String {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: besideTests) { return besideTests }
        return root.appendingPathComponent(".build/debug/\(name)").path
    }
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String

    var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
    }
}

enum TestProcessError: Error, CustomStringConvertible {
    case timedOut(String)
    case noOutput(String)
    var description: String {
        switch self {
        case .timedOut(let what): return "timed out: \(what)"
        case .noOutput(let what): return "no output: \(what)"
        }
    }
}

/// Runs a program to completion with a time bound; standard input is empty
/// (not a terminal), as in CI. The waiting happens on a thread of its own:
/// blocking a cooperative-pool thread (two on this machine) would stall
/// every other test running at the same time.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String],
                timeout: TimeInterval = 120) async throws -> ProcessResult {
    try await offPool { try runProcessBlocking(executable, arguments, environment: environment, timeout: timeout) }
}

/// Runs blocking work on a new thread and resumes the caller when it is done.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

private func runProcessBlocking(_ executable: String, _ arguments: [String], environment: [String: String],
                                timeout: TimeInterval) throws -> ProcessResult {
    // Output goes to files, not pipes, and the wait is for the process's
    // exit, not for end-of-file: another test spawning a long-lived process
    // at the same moment can inherit a pipe's write end, and then the pipe
    // would not close until that process (a simulator, a worker) exits.
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let outURL = directory.appendingPathComponent("stdout"), errURL = directory.appendingPathComponent("stderr")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    defer { try? out.close(); try? err.close() }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = out
    process.standardError = err
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try startProcess(process)
    if exited.wait(timeout: .now() + timeout) == .timedOut {
        process.terminate()
        throw TestProcessError.timedOut("\(executable) \(arguments.joined(separator: " "))")
    }
    process.waitUntilExit()
    let stdout = (try? Data(contentsOf: outURL)) ?? Data()
    let stderr = (try? Data(contentsOf: errURL)) ?? Data()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
}

/// The environment a CLI test runs in: no AWS settings of the machine leak
/// in, HOME is empty, and instance metadata is never contacted.
func isolatedEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    let home = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-home-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    var environment = [
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        "HOME": home,
        "AWS_EC2_METADATA_DISABLED": "true",
    ]
    environment.merge(extra) { _, new in new }
    return environment
}

func torpor(_ arguments: [String], environment: [String: String]) async throws -> ProcessResult {
    try await runProcess(TestPaths.torpor, arguments, environment: environment)
}

/// A helper server (one of Tests/Support/*.py) on loopback. It prints one
/// line when ready and stops when its standard input closes, so it never
/// outlives the test process.
final class HelperServer: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    let firstLine: String

    init(script: String, arguments: [String] = [], startupTimeout: TimeInterval = 60) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", TestPaths.support.appendingPathComponent(script).path] + arguments
        process.standardInput = input
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try startProcess(process)
        let line = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var buffer = Data()
            while !buffer.contains(0x0A) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
            }
            let text = String(decoding: buffer, as: UTF8.self).split(separator: "\n").first.map(String.init)
            line.withLock { $0 = text }
            ready.signal()
        }
        if ready.wait(timeout: .now() + startupTimeout) == .timedOut {
            process.terminate()
            throw TestProcessError.timedOut("\(script) did not start")
        }
        guard let first = line.withLock({ $0 }) else {
            throw TestProcessError.noOutput("\(script) exited before it was ready")
        }
        firstLine = first
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    deinit { stop() }
}
