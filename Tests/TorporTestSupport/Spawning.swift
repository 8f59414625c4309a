public import Foundation
import Synchronization

/// Starts a child process of the tests. Every test that starts a process goes
/// through here, so that no two `Process.run()` calls overlap.
///
/// Why: on Linux, Foundation's `Process` learns that a child has exited when a
/// socket it hands to that child closes. Between creating that socket and
/// closing its own copy of the child's end, `run()` holds that end open in the
/// test process; a `run()` on another thread in that window hands it to its
/// child as well (every descriptor is inherited), and then the first child's
/// exit goes unnoticed until the second child exits too
/// (swift-corelibs-foundation issue 4795). The tests start short commands
/// (`torpor sign`, `torpor report`) beside simulators, workers and servers
/// that live for minutes: seen here, a `torpor sign` that ended at once was
/// waited for a whole minute, until the simulator of another test stopped.
/// `isRunning`, `waitUntilExit()` and the termination handler all hang on
/// that same socket, so the fix is here, where processes start, not in each
/// wait.
public func startProcess(_ process: Process) throws {
    try spawnLock.withLock { _ in try process.run() }
}

private let spawnLock = Mutex<Void>(())
