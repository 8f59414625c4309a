/// Transitions due at a simulated time, kept in a binary min-heap so that
/// thousands of instances in flight cost O(log n) each.
struct Scheduler {
    enum Kind: Int {
        case stopped, running, statusOk, reachable, startFailed, terminated
    }

    struct Entry {
        let time: Double
        let sequence: Int
        let instance: Int
        let generation: UInt64
        let kind: Kind
    }

    private var heap: [Entry] = []
    private var nextSequence = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var earliest: Double? { heap.first?.time }

    mutating func schedule(at time: Double, instance: Int, generation: UInt64, kind: Kind) {
        heap.append(Entry(time: time, sequence: nextSequence, instance: instance, generation: generation, kind: kind))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest entry due at or before `time`, removed.
    mutating func popDue(by time: Double) -> Entry? {
        guard let first = heap.first, first.time <= time else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, precedes(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, precedes(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }

    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }
}
