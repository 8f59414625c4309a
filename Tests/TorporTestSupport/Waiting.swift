import Foundation
public import Logging

/// A logger that says nothing below `.critical` (and nothing logs at that
/// level), for the simulator, clients and services under test.
public let quietLogger: Logger = {
    var logger = Logger(label: "torpor.tests")
    logger.logLevel = .critical
    return logger
}()

/// A fresh directory under the system's temporary directory, removed after
/// `body` however it ends.
public func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("torpor-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}

/// Polls `condition` (in real time) until it holds or `timeout` passes. The
/// default is generous: a wait for what must happen costs its time only when
/// it fails, and the first seconds of a test run load the machine heavily.
public func eventually(timeout: Double = 30, every: Duration = .milliseconds(20),
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: every)
    }
    return try await condition()
}

/// Whether python3 can open SQLite here: the tests that lock a queue file
/// from another process need it.
public let pythonSQLiteAvailable: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import sqlite3"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? startProcess(process)) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()
