import CLibCrypto
import Synchronization

/// SHA-256 and HMAC-SHA256 over OpenSSL 3's libcrypto.
///
/// The `EVP_MD` and `EVP_MAC` are fetched once per process: looking an
/// algorithm up by name costs more than hashing a signing request. Contexts are
/// kept in a small pool and reused, because creating one per call is the other
/// large fixed cost. Contexts are not thread-safe, so each call takes one out
/// of the pool for its duration.
public enum Digest {
    public static let sha256Length = 32

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: UnsafeRawBufferPointer) -> SHA256Value {
        var out = SHA256Value()
        ContextPool.shared.withContexts { contexts in
            withUnsafeMutableBytes(of: &out.storage) { outBuffer in
                let ok = torpor_sha256(
                    contexts.digest, Algorithms.shared.sha256,
                    bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                    outBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(ok == 1, "OpenSSL SHA-256 failed")
            }
        }
        return out
    }

    public static func sha256<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> SHA256Value {
        if let value = bytes.withContiguousStorageIfAvailable({ sha256(UnsafeRawBufferPointer($0)) }) {
            return value
        }
        return Array(bytes).withUnsafeBytes { sha256($0) }
    }

    public static func sha256(_ string: String) -> SHA256Value {
        var string = string
        return string.withUTF8 { sha256(UnsafeRawBufferPointer($0)) }
    }

    /// HMAC-SHA256 of `data` under `key`.
    public static func hmacSHA256(key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) -> SHA256Value {
        var out = SHA256Value()
        ContextPool.shared.withContexts { contexts in
            withUnsafeMutableBytes(of: &out.storage) { outBuffer in
                let ok = torpor_hmac_sha256(
                    contexts.mac,
                    key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count,
                    data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                    outBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(ok == 1, "OpenSSL HMAC-SHA256 failed")
            }
        }
        return out
    }

    public static func hmacSHA256(key: SHA256Value, data: UnsafeRawBufferPointer) -> SHA256Value {
        withUnsafeBytes(of: key.storage) { hmacSHA256(key: $0, data: data) }
    }

    public static func hmacSHA256(key: SHA256Value, string: String) -> SHA256Value {
        var string = string
        return string.withUTF8 { hmacSHA256(key: key, data: UnsafeRawBufferPointer($0)) }
    }

    public static func hmacSHA256(key: [UInt8], string: String) -> SHA256Value {
        var string = string
        return key.withUnsafeBytes { keyBytes in
            string.withUTF8 { hmacSHA256(key: keyBytes, data: UnsafeRawBufferPointer($0)) }
        }
    }
}

/// An HMAC-SHA256 key with its pads already hashed: signing with it costs
/// only the message's blocks. Immutable once made, so shared freely.
public final class PreparedHMACKey: @unchecked Sendable {
    public let key: SHA256Value
    fileprivate let inner: OpaquePointer
    fileprivate let outer: OpaquePointer

    public init(_ key: SHA256Value) {
        self.key = key
        guard let inner = EVP_MD_CTX_new(), let outer = EVP_MD_CTX_new() else { fatalError("OpenSSL: out of memory") }
        let ok = withUnsafeBytes(of: key.storage) { raw in
            torpor_hmac_prepare(Algorithms.shared.sha256, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count, inner, outer)
        }
        precondition(ok == 1, "OpenSSL HMAC key preparation failed")
        self.inner = inner
        self.outer = outer
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    public func authenticate(_ data: UnsafeRawBufferPointer) -> SHA256Value {
        var out = SHA256Value()
        ContextPool.shared.withContexts { contexts in
            withUnsafeMutableBytes(of: &out.storage) { outBuffer in
                let ok = torpor_hmac_prepared(
                    contexts.digest, inner, outer,
                    data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count,
                    outBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(ok == 1, "OpenSSL HMAC-SHA256 failed")
            }
        }
        return out
    }
}

/// A 32-byte digest held inline, so that hashing allocates nothing.
public struct SHA256Value: Sendable, Hashable {
    var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init() {}

    public var bytes: [UInt8] { withUnsafeBytes(of: storage) { Array($0) } }

    /// Lower-case hexadecimal, as SigV4 writes every digest.
    public var hex: String {
        withUnsafeBytes(of: storage) { raw in
            String(unsafeUninitializedCapacity: 64) { out in
                Hex.encode(raw, into: out.baseAddress!)
                return 64
            }
        }
    }

    /// Appends the lower-case hexadecimal form to `buffer`.
    public func appendHex(to buffer: inout [UInt8]) {
        // 64 digits written into a stack buffer, then appended in one copy:
        // this runs three times per signature.
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeBytes(of: storage) { raw in
            withUnsafeMutableBytes(of: &digits) { out in
                Hex.encode(raw, into: out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        withUnsafeBytes(of: digits) { buffer.append(contentsOf: $0) }
    }

    public static func == (lhs: SHA256Value, rhs: SHA256Value) -> Bool {
        lhs.storage == rhs.storage
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }
}

enum Hex {
    static let upper: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 &+ nibble : 0x57 &+ nibble // "0"... or "a"...
    }

    static func encode(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        var index = 0
        for byte in raw {
            out[index] = digit(byte >> 4)
            out[index + 1] = digit(byte & 0x0F)
            index += 2
        }
    }
}

/// The algorithms, fetched once per process.
private final class Algorithms: @unchecked Sendable {
    // Immutable after init; OpenSSL documents fetched algorithms as shareable
    // between threads.
    let sha256: OpaquePointer
    let hmac: OpaquePointer

    static let shared = Algorithms()

    private init() {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else {
            fatalError("OpenSSL: SHA256 is not available in the default provider")
        }
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            fatalError("OpenSSL: HMAC is not available in the default provider")
        }
        sha256 = md
        hmac = mac
    }
}

/// One digest context and one HMAC context, used by one call at a time.
// Handed to one caller at a time by the pool, never shared.
private final class Contexts: @unchecked Sendable {
    let digest: OpaquePointer
    let mac: OpaquePointer

    init() {
        guard let digest = EVP_MD_CTX_new() else { fatalError("OpenSSL: out of memory") }
        guard let mac = EVP_MAC_CTX_new(Algorithms.shared.hmac) else { fatalError("OpenSSL: out of memory") }
        guard torpor_hmac_set_sha256(mac) == 1 else { fatalError("OpenSSL: HMAC cannot use SHA256") }
        self.digest = digest
        self.mac = mac
    }

    deinit {
        EVP_MD_CTX_free(digest)
        EVP_MAC_CTX_free(mac)
    }
}

private final class ContextPool: Sendable {
    static let shared = ContextPool()

    // Sized for the threads that sign at once; a burst beyond it allocates
    // fresh contexts and drops the surplus afterwards.
    private static let retained = 16
    private let free = Mutex<[Contexts]>([])

    func withContexts<R>(_ body: (Contexts) -> R) -> R {
        let contexts = free.withLock { $0.popLast() } ?? Contexts()
        defer {
            free.withLock { pool in
                if pool.count < Self.retained { pool.append(contexts) }
            }
        }
        return body(contexts)
    }
}
