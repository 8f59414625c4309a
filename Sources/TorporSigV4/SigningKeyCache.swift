import Synchronization

/// Derived signing keys, cached per (secret, date, region, service).
///
/// A key takes four HMACs to derive and stays valid for a whole UTC day, so a
/// busy client derives it once a day instead of once a request. The cache is
/// small and searched linearly: a process signs for few regions and services,
/// and comparing a few strings is cheaper than hashing them.
final class SigningKeyCache: Sendable {
    static let shared = SigningKeyCache()

    private struct Entry {
        let secret: String
        let dateStamp: String
        let region: String
        let service: String
        let key: PreparedHMACKey
        let scope: String
    }

    /// A day's signing key and the credential scope it signs for.
    struct ScopedKey {
        let key: PreparedHMACKey
        let scope: String
    }

    private static let capacity = 16
    private let entries = Mutex<[Entry]>([])

    func key(secret: String, dateStamp: String, region: String, service: String) -> ScopedKey {
        let cached = entries.withLock { entries in
            entries.first {
                $0.dateStamp == dateStamp && $0.region == region && $0.service == service && $0.secret == secret
            }.map { ScopedKey(key: $0.key, scope: $0.scope) }
        }
        if let cached { return cached }
        let key = PreparedHMACKey(Self.derive(secret: secret, dateStamp: dateStamp, region: region, service: service))
        let scope = "\(dateStamp)/\(region)/\(service)/aws4_request"
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeFirst() }
            entries.append(Entry(secret: secret, dateStamp: dateStamp, region: region, service: service, key: key, scope: scope))
        }
        return ScopedKey(key: key, scope: scope)
    }

    static func derive(secret: String, dateStamp: String, region: String, service: String) -> SHA256Value {
        let dateKey = Digest.hmacSHA256(key: Array(("AWS4" + secret).utf8), string: dateStamp)
        let regionKey = Digest.hmacSHA256(key: dateKey, string: region)
        let serviceKey = Digest.hmacSHA256(key: regionKey, string: service)
        return Digest.hmacSHA256(key: serviceKey, string: "aws4_request")
    }
}
