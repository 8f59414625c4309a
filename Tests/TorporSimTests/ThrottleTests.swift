import Foundation
import Testing
@testable import TorporSim
import TorporTestSupport

@Suite("Throttling: EC2's token buckets on simulated time")
struct ThrottleTests {
    func engine(_ groups: [GroupSpec] = [makeGroup("g", 5)], throttle: ThrottleConfig = .aws) -> (SimEngine, ManualClock) {
        let clock = ManualClock(start: t0)
        return (SimEngine(spec: makeSpec(groups), clock: clock, throttle: throttle), clock)
    }

    func isThrottled(_ reply: Reply) -> Bool {
        reply.errorCode == "RequestLimitExceeded"
    }

    /// Calls until one is throttled; how many passed before it.
    func passesBeforeThrottle(limit: Int = 5000, _ call: () throws -> Reply) throws -> Int {
        for count in 0..<limit {
            let reply = try call()
            if isThrottled(reply) {
                #expect(reply.status == 503)
                return count
            }
        }
        return limit
    }

    @Test("non-mutating calls: 100 pass, the 101st is RequestLimitExceeded (503); 20 more per simulated second")
    func nonMutating() throws {
        let (engine, clock) = engine()
        let ids = engine.instances().map(\.id)
        for number in 1...100 {
            let reply = try engineCall(engine, "DescribeInstanceStatus", list("InstanceId", [ids[number % ids.count]]))
            #expect(reply.status == 200, "call \(number): \(reply.errorCode ?? "")")
        }
        let throttled = try engineCall(engine, "DescribeInstanceStatus")
        #expect(throttled.status == 503)
        #expect(throttled.errorCode == "RequestLimitExceeded")
        #expect(throttled.requestID != nil)
        // Other non-mutating actions share the bucket.
        #expect(isThrottled(try engineCall(engine, "DescribeInstanceTypes")))
        #expect(isThrottled(try engineCall(engine, "DescribeInstances", ["MaxResults": "5"])))

        clock.advance(by: 1)
        #expect(try passesBeforeThrottle { try engineCall(engine, "DescribeInstanceTypes") } == 20)
        clock.advance(by: 0.5)
        #expect(try passesBeforeThrottle { try engineCall(engine, "DescribeSpotPriceHistory") } == 10)
        // The bucket never holds more than its capacity, however long it rests.
        clock.advance(by: 3600)
        #expect(try passesBeforeThrottle { try engineCall(engine, "DescribeInstanceStatus") } == 100)
    }

    @Test("unfiltered DescribeInstances has its own bucket of 50, refilled at 10 per second")
    func describeUnfiltered() throws {
        let (engine, clock) = engine()
        #expect(try passesBeforeThrottle { try engineCall(engine, "DescribeInstances") } == 50)
        // Filtered or paged describes draw on the non-mutating bucket, still full.
        #expect(try engineCall(engine, "DescribeInstances", filters([("instance-state-name", ["running"])])).status == 200)
        #expect(try engineCall(engine, "DescribeInstances", ["MaxResults": "5"]).status == 200)
        #expect(try engineCall(engine, "DescribeInstances", list("InstanceId", [engine.instances()[0].id])).status == 200)
        clock.advance(by: 1)
        #expect(try passesBeforeThrottle { try engineCall(engine, "DescribeInstances") } == 10)
        // Exhausting the non-mutating bucket leaves the unfiltered one alone.
        clock.advance(by: 5)
        _ = try passesBeforeThrottle { try engineCall(engine, "DescribeInstanceTypes") }
        #expect(try engineCall(engine, "DescribeInstances").status == 200)
    }

    @Test("StartInstances: a request bucket of 5, refilled at 2 per second")
    func startInstancesBucket() throws {
        let (engine, clock) = engine([makeGroup("g", 3) { $0.initialState = .stopped }])
        let id = engine.instances()[0].id
        let dryRun = { try engineCall(engine, "StartInstances", list("InstanceId", [id]) + ["DryRun": "true"]) }
        for _ in 1...5 {
            let reply = try dryRun()
            #expect(reply.status == 412)
            #expect(reply.errorCode == "DryRunOperation")
        }
        #expect(isThrottled(try dryRun()))
        // StopInstances is not in the StartInstances bucket.
        #expect(try engineCall(engine, "StopInstances", list("InstanceId", [id]) + ["DryRun": "true"]).errorCode == "DryRunOperation")
        clock.advance(by: 0.5)
        #expect(try dryRun().errorCode == "DryRunOperation")
        #expect(isThrottled(try dryRun()))
        clock.advance(by: 1)
        #expect(try passesBeforeThrottle(dryRun) == 2)
    }

    @Test("StopInstances: 1000 instances pass, then even one is throttled until the resource bucket refills (20/s)")
    func stopResourceBucket() throws {
        let (engine, clock) = engine([makeGroup("g", 1001)])
        let ids = engine.instances().map(\.id)
        let big = try engineCall(engine, "StopInstances", list("InstanceId", Array(ids.prefix(1000))))
        #expect(big.status == 200)
        #expect(big.changes.count == 1000)
        let last = [ids[1000]]
        let before = engine.events().count
        for _ in 0..<10 {
            let reply = try engineCall(engine, "StopInstances", list("InstanceId", last))
            #expect(isThrottled(reply))
        }
        // A throttled call changes nothing.
        #expect(engine.instances()[1000].state == .running)
        #expect(engine.events().count == before)
        clock.advance(by: 0.04) // 0.8 of a token
        #expect(isThrottled(try engineCall(engine, "StopInstances", list("InstanceId", last))))
        clock.advance(by: 0.02) // 1.2 tokens
        let passed = try engineCall(engine, "StopInstances", list("InstanceId", last))
        #expect(passed.status == 200)
        #expect(passed.changes.first?.current == "stopping")
        #expect(isThrottled(try engineCall(engine, "StopInstances", list("InstanceId", [ids[0]]))))
        // Throttled calls took nothing from the request bucket: 50 - 2 mutating calls passed so far.
        #expect(try passesBeforeThrottle {
            try engineCall(engine, "CreateTags", list("ResourceId", [ids[0]]) + ["Tag.1.Key": "K", "Tag.1.Value": "V"])
        } == 48)
    }

    @Test("a throttled call changes nothing: states, tags, events")
    func throttledChangesNothing() throws {
        let (engine, _) = engine([makeGroup("g", 3), makeGroup("down", 1) { $0.initialState = .stopped }],
                                 throttle: ThrottleConfig(buckets: [.mutating: .init(capacity: 1, refill: 0), .startInstances: .init(capacity: 1, refill: 0)]))
        let ids = engine.instances().map(\.id)
        #expect(try engineCall(engine, "CreateTags", list("ResourceId", [ids[0]]) + ["Tag.1.Key": "A", "Tag.1.Value": "1"]).status == 200)
        let events = engine.events().count
        #expect(isThrottled(try engineCall(engine, "StopInstances", list("InstanceId", [ids[1]]) + ["Hibernate": "true"])))
        #expect(isThrottled(try engineCall(engine, "CreateTags", list("ResourceId", [ids[2]]) + ["Tag.1.Key": "B", "Tag.1.Value": "2"])))
        #expect(try engineCall(engine, "StartInstances", list("InstanceId", [ids[3]])).status == 200)
        #expect(isThrottled(try engineCall(engine, "StartInstances", list("InstanceId", [ids[3]]))))
        let states = engine.instances().map(\.state)
        #expect(states == [.running, .running, .running, .pending])
        let described = try engineCall(engine, "DescribeInstances", filters([("tag-key", ["B"])]))
        #expect(described.instanceIDs.isEmpty)
        // Only the accepted start's events were added.
        #expect(engine.events().count == events + 1)
    }

    @Test("ThrottleConfig.off never throttles")
    func off() throws {
        let (engine, _) = engine([makeGroup("g", 2) { $0.initialState = .stopped }], throttle: .off)
        let id = engine.instances()[0].id
        for _ in 0..<1000 {
            #expect(try engineCall(engine, "DescribeInstances").status == 200)
        }
        for _ in 0..<100 {
            #expect(try engineCall(engine, "StartInstances", list("InstanceId", [id]) + ["DryRun": "true"]).errorCode == "DryRunOperation")
        }
        #expect(engine.stats().throttled.isEmpty)
    }

    @Test("stats count calls, throttles and errors per action")
    func stats() throws {
        let (engine, _) = engine([makeGroup("g", 2)])
        let id = engine.instances()[0].id
        for _ in 0..<53 { _ = try engineCall(engine, "DescribeInstances") }
        for _ in 0..<7 { _ = try engineCall(engine, "StartInstances", list("InstanceId", [id]) + ["DryRun": "true"]) }
        _ = try engineCall(engine, "StopInstances", list("InstanceId", ["i-0123456789abcdef0"]))
        let stats = engine.stats()
        #expect(stats.calls["DescribeInstances"] == 53)
        #expect(stats.calls["StartInstances"] == 7)
        #expect(stats.throttled["DescribeInstances"] == 3)
        #expect(stats.throttled["StartInstances"] == 2)
        #expect(stats.throttled["StopInstances"] == nil)
        #expect(stats.errors["RequestLimitExceeded"] == 5)
        #expect(stats.errors["DryRunOperation"] == 5)
        #expect(stats.errors["InvalidInstanceID.NotFound"] == 1)
        #expect(stats.instances["running"] == 2)
        #expect(stats.simulatedTime == t0 && stats.simulatedSince == t0)
    }
}
