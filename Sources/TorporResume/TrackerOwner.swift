import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The names trackers own their rows under: `ROLE@HOST:PID`. The process id
/// keeps two trackers on one host (two workers on one queue, a command line
/// beside a worker) from taking each other's live rows; on the same host a
/// tracker whose process has ended is seen at once, so a restarted worker
/// takes its predecessor's rows back without waiting for the heartbeat to
/// go stale.
public enum TrackerOwner {
    /// This process's owner name for `role` (`worker`, `cli`).
    public static func current(_ role: String) -> String {
        "\(role)@\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// True when `owner` names a process of this host that no longer exists.
    /// Anything else (another host, an unparseable name, a live process, a
    /// process id reused since) is left to the heartbeat.
    public static func isGone(_ owner: String, host: String? = nil) -> Bool {
        let host = host ?? ProcessInfo.processInfo.hostName
        guard let at = owner.firstIndex(of: "@"), let colon = owner.lastIndex(of: ":"), at < colon else { return false }
        let ownerHost = owner[owner.index(after: at)..<colon]
        guard ownerHost == host, let pid = Int32(owner[owner.index(after: colon)...]), pid > 0 else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }
}
