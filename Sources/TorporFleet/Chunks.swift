extension Array {
    /// The array cut into consecutive pieces of at most `size` elements:
    /// EC2 calls take ids in bounded batches.
    public func chunks(of size: Int) -> [ArraySlice<Element>] {
        precondition(size > 0, "a chunk holds at least one element")
        return stride(from: 0, to: count, by: size).map { self[$0..<Swift.min(count, $0 + size)] }
    }
}
