/// An async sequence of pages: each `next()` fetches one page with the
/// previous page's token. It ends when the token is absent or empty.
public struct Paginator<Item: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Page<Item>
    let fetch: @Sendable (String?) async throws -> Page<Item>

    public init(fetch: @escaping @Sendable (String?) async throws -> Page<Item>) {
        self.fetch = fetch
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let fetch: @Sendable (String?) async throws -> Page<Item>
        var token: String?
        var finished = false
        var seenTokens = Set<String>()

        public mutating func next() async throws -> Page<Item>? {
            guard !finished else { return nil }
            let page = try await fetch(token)
            if let next = page.nextToken, !next.isEmpty {
                // A server that hands back a token it already gave would keep
                // us paging forever.
                guard seenTokens.insert(next).inserted else {
                    throw EC2UsageError("pagination: the service returned the token '\(next)' twice")
                }
                token = next
            } else {
                finished = true
            }
            return page
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(fetch: fetch)
    }

    /// Every item of every page.
    public func all() async throws -> [Item] {
        var items: [Item] = []
        for try await page in self { items += page.items }
        return items
    }
}
