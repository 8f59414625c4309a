import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The names trackers own their rows under: `ROLE@HOST:PID`, with `/NS`,
/// the process-id namespace, where Linux has one. The process id keeps two
/// trackers on one host (two workers on one queue, a command line beside a
/// worker) from taking each other's live rows; on the same host and
/// namespace a tracker whose process has ended is seen at once, so a
/// restarted worker takes its predecessor's rows without waiting for the
/// heartbeat to go stale. Containers that share a hostname (host
/// networking) but not process ids differ in namespace, and are left to the
/// heartbeat.
public enum TrackerOwner {
    /// This process's owner name for `role` (`worker`, `cli`).
    public static func current(_ role: String) -> String {
        "\(role)@\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"
            + (pidNamespace.map { "/\($0)" } ?? "")
    }

    /// True when `owner` names a process of this host and process-id
    /// namespace that no longer exists. Anything else (another host or
    /// namespace, an unparseable name, a live process, a process id reused
    /// since) is left to the heartbeat.
    public static func isGone(_ owner: String, host: String? = nil, namespace: String? = pidNamespace) -> Bool {
        let host = host ?? ProcessInfo.processInfo.hostName
        guard let at = owner.firstIndex(of: "@"), let colon = owner.lastIndex(of: ":"), at < colon else { return false }
        guard owner[owner.index(after: at)..<colon] == host else { return false }
        let process = owner[owner.index(after: colon)...].split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let pid = Int32(process[0]), pid > 0 else { return false }
        let ownerNamespace = process.count > 1 ? String(process[1]) : nil
        guard ownerNamespace == namespace else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }

    /// This process's pid namespace (`4026531836`), from /proc; nil where
    /// there is none to read.
    public static let pidNamespace: String? = {
        var buffer = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let link = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) // "pid:[4026531836]"
        let digits = link.filter(\.isNumber)
        return digits.isEmpty ? nil : digits
    }()
}
