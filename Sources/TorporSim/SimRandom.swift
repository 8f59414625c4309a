/// SplitMix64: small, fast and seedable, so every draw of the simulator is
/// reproducible from the fleet's seed.
struct SimRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// A generator for one purpose, independent of the order in which
    /// requests arrive: the same (seed, keys) always draw the same numbers.
    init(seed: UInt64, _ keys: UInt64...) {
        var mixed = seed
        for key in keys { mixed = Self.mix(mixed ^ (key &* 0x9E37_79B9_7F4A_7C15)) }
        state = mixed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// A uniform draw in (0, 1).
    mutating func unit() -> Double {
        (Double(next() >> 11) + 0.5) / Double(1 << 53)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
