import Foundation

/// Spot prices per (instance type, zone, product), from the fleet file's
/// steps or seeded random walks, changeable while the simulator runs.
struct SpotMarket {
    struct Key: Hashable {
        let instanceType: String
        let zone: String
        let product: String
    }

    struct Point {
        let time: Double
        let price: Double
    }

    /// Every series' changes in time order; random walks are extended on
    /// demand up to the time asked about.
    private var points: [Key: [Point]] = [:]
    private var walks: [Key: (walk: SpotSeriesSpec.RandomWalk, random: SimRandom)] = [:]
    let start: Double

    init(series: [SpotSeriesSpec], seed: UInt64, start: Double) {
        self.start = start
        for (index, spec) in series.enumerated() {
            let key = Key(instanceType: spec.instanceType, zone: spec.zone, product: spec.product)
            var list = spec.steps.map { Point(time: start + $0.at, price: $0.price) }
            if let walk = spec.randomWalk {
                list.append(Point(time: start, price: walk.start))
                walks[key] = (walk, SimRandom(seed: seed, 0x73_706F_74, UInt64(index)))
            }
            points[key, default: []] += list
            points[key]!.sort { $0.time < $1.time }
        }
    }

    var keys: [Key] { Array(points.keys) }

    /// Extends random walks up to `time`.
    mutating func extend(to time: Double) {
        for (key, entry) in walks {
            var (walk, random) = entry
            var list = points[key] ?? []
            while let last = list.last, last.time + walk.every <= time {
                // A Gaussian step from two uniforms (Box-Muller).
                let gaussian = (-2 * log(random.unit())).squareRoot() * cos(2 * .pi * random.unit())
                let price = max(walk.floor, last.price * (1 + walk.volatility * gaussian))
                list.append(Point(time: last.time + walk.every, price: (price * 1_000_000).rounded() / 1_000_000))
            }
            points[key] = list
            walks[key] = (walk, random)
        }
    }

    /// Sets a price from `time` on (POST /_sim/spot).
    mutating func set(_ key: Key, price: Double, at time: Double) {
        points[key, default: []].removeAll { $0.time >= time }
        points[key, default: []].append(Point(time: time, price: price))
        walks[key] = nil
    }

    /// DescribeSpotPriceHistory's answer: the changes within [from, to], and
    /// the last change before `from` (the price in force at `from`), newest
    /// first, as EC2 orders them.
    func history(_ key: Key, from: Double, to: Double) -> [Point] {
        guard let list = points[key] else { return [] }
        var result = list.filter { $0.time >= from && $0.time <= to }
        if let before = list.last(where: { $0.time < from }) { result.append(before) }
        return result.sorted { $0.time > $1.time }
    }

    func price(_ key: Key, at time: Double) -> Double? {
        points[key]?.last(where: { $0.time <= time })?.price
    }
}
