import Foundation
import Testing
import TorporAWS
@testable import TorporSim
import TorporTestSupport

@Suite("Fleet state: composition, lifecycle, EC2 rules")
struct FleetStateTests {
    // MARK: Composition

    @Test("shares are exact: 100 instances with 0.8 configured have exactly 20 unconfigured; spot counts too")
    func exactShares() throws {
        let sim = Harness(makeSpec([makeGroup("g", 100) {
            $0.hibernationConfigured = 0.8
            $0.spot = 0.3
            $0.oneTimeSpot = 0.1
        }]))
        let instances = sim.state.instances
        #expect(instances.count == 100)
        #expect(instances.filter { !$0.hibernationConfigured }.count == 20)
        #expect(instances.filter { $0.lifecycle == "spot" }.count == 40)
        #expect(instances.filter { $0.oneTimeSpot }.count == 10)
        #expect(instances.filter { $0.oneTimeSpot }.allSatisfy { $0.lifecycle == "spot" })
        #expect(instances.filter { $0.lifecycle == "spot" }.allSatisfy { $0.spotRequestID?.hasPrefix("sir-") == true })
        #expect(instances.filter { $0.lifecycle == nil }.allSatisfy { $0.spotRequestID == nil })

        // The API says the same.
        let unconfigured = try sim.call("DescribeInstances", filters([("hibernation-options.configured", ["false"])]))
        #expect(unconfigured.instanceIDs.count == 20)
        let configured = try sim.call("DescribeInstances", filters([("hibernation-options.configured", ["true"])]))
        #expect(configured.instanceIDs.count == 80)
        let spot = try sim.call("DescribeInstances", filters([("instance-lifecycle", ["spot"])]))
        #expect(spot.instanceIDs.count == 40)
        #expect(spot.instances.allSatisfy { $0.string("instanceLifecycle") == "spot" && $0.string("spotInstanceRequestId") != nil })
        let all = try sim.call("DescribeInstances")
        #expect(all.instances.filter { $0["hibernationOptions", "configured"]?.text == "false" }.count == 20)
    }

    @Test("shares of other sizes round to the nearest instance", arguments: [(10, 0.75, 3), (7, 0.5, 4), (3, 1.0, 0), (3, 0.0, 3)])
    func roundedShares(count: Int, configured: Double, expectedUnconfigured: Int) {
        let sim = Harness(makeSpec([makeGroup("g", count) { $0.hibernationConfigured = configured }]))
        #expect(sim.state.instances.filter { !$0.hibernationConfigured }.count == expectedUnconfigured)
    }

    @Test("the same seed gives the same ids and the same transition times; another seed other ids")
    func determinism() throws {
        func run(seed: UInt64) throws -> (ids: [String], events: [String]) {
            let sim = Harness(makeSpec(seed: seed, [makeGroup("a", 30), makeGroup("b", 20) { $0.memoryGiB = 32 }]))
            let ids = sim.state.instances.map(\.id)
            try sim.call("StopInstances", list("InstanceId", Array(ids.prefix(25))) + ["Hibernate": "true"])
            try sim.call("StopInstances", list("InstanceId", Array(ids.suffix(25))))
            sim.advance(by: 5000)
            try sim.call("StartInstances", list("InstanceId", ids))
            sim.advance(by: 5000)
            return (ids, sim.state.events.map { "\($0.time) \($0.instanceID) \($0.kind) \($0.from) \($0.to) \($0.cause)" })
        }
        let first = try run(seed: 11), second = try run(seed: 11), other = try run(seed: 12)
        #expect(first.ids == second.ids)
        #expect(first.events == second.events)
        #expect(first.events.count > 150)
        #expect(Set(first.ids).isDisjoint(with: Set(other.ids)))
        #expect(first.events != other.events)
    }

    @Test("ids are i- and 17 lowercase hex digits, all distinct")
    func idFormat() {
        let sim = Harness(makeSpec([makeGroup("g", 2000)]))
        let ids = sim.state.instances.map(\.id)
        #expect(Set(ids).count == 2000)
        for id in ids {
            #expect(id.hasPrefix("i-"))
            let digits = id.dropFirst(2)
            #expect(digits.count == 17, "\(id)")
            #expect(digits.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }, "\(id)")
        }
    }

    @Test("private addresses are distinct loopback addresses 127.x.y.z")
    func privateAddresses() throws {
        let sim = Harness(makeSpec([makeGroup("a", 5000), makeGroup("b", 1000)]))
        let addresses = sim.state.instances.map(\.privateIP)
        #expect(Set(addresses).count == 6000)
        for address in addresses {
            let parts = address.split(separator: ".").compactMap { Int($0) }
            #expect(parts.count == 4 && parts[0] == 127 && parts.allSatisfy { (0...255).contains($0) }, "\(address)")
        }
        let described = try sim.call("DescribeInstances", list("InstanceId", [sim.state.instances[7].id]))
        #expect(described.instances.first?.string("privateIpAddress") == sim.state.instances[7].privateIP)
    }

    // MARK: Stopping and hibernating

    @Test("stop: running -> stopping at once, stopped after a duration drawn from the distribution")
    func stopTiming() throws {
        let stop = DurationDistribution(median: 30, p95: 60)
        let sim = Harness(makeSpec([makeGroup("g", 200) { $0.timings.stop = stop }]))
        let ids = sim.ids(group: "g")
        let reply = try sim.call("StopInstances", list("InstanceId", ids))
        #expect(reply.status == 200)
        #expect(reply.changes.count == 200)
        #expect(reply.changes.allSatisfy { $0.previous == "running" && $0.current == "stopping" })
        #expect(Set(reply.changes.map(\.id)) == Set(ids))
        let now = try sim.call("DescribeInstances", list("InstanceId", ids))
        #expect(now.instances.allSatisfy { $0["instanceState", "name"]?.text == "stopping" && $0["instanceState", "code"]?.text == "64" })

        sim.advance(by: 10_000)
        var durations: [Double] = []
        for id in ids {
            let events = sim.stateEvents(id)
            #expect(events.map { "\($0.from)->\($0.to)" } == ["running->stopping", "stopping->stopped"])
            #expect(events.first?.time == t0)
            let stopped = try #require(sim.time(of: id, enteringState: "stopped"))
            let duration = stopped - t0
            #expect(duration >= stop.median / 10 && duration <= stop.p95 * 5, "\(duration)")
            durations.append(duration)
        }
        // A log-normal with median 30: about half below it, about 5% above the p95.
        let below = durations.filter { $0 < stop.median }.count
        #expect((70...130).contains(below), "\(below) of 200 below the median")
        let aboveP95 = durations.filter { $0 > stop.p95 }.count
        #expect((1...25).contains(aboveP95), "\(aboveP95) of 200 above the p95")
        let after = try sim.call("DescribeInstances", list("InstanceId", ids))
        #expect(after.instances.allSatisfy { $0["instanceState", "name"]?.text == "stopped" && $0["instanceState", "code"]?.text == "80" })
    }

    @Test("hibernation takes longer than a plain stop on average, and grows with memory by hibernatePerGiB")
    func hibernationTiming() throws {
        func configure(_ memory: Double) -> (inout GroupSpec) -> Void {
            { group in
                group.memoryGiB = memory
                group.timings.stop = DurationDistribution(median: 30, p95: 60)
                group.timings.hibernate = DurationDistribution(median: 40, p95: 80)
                group.timings.hibernatePerGiB = 2
            }
        }
        let sim = Harness(makeSpec([makeGroup("plain", 200, configure(4)), makeGroup("small", 200, configure(4)),
                                    makeGroup("big", 200, configure(64))]))
        try sim.call("StopInstances", list("InstanceId", sim.ids(group: "plain")))
        try sim.call("StopInstances", list("InstanceId", sim.ids(group: "small") + sim.ids(group: "big")) + ["Hibernate": "true"])
        sim.advance(by: 100_000)
        func durations(_ group: String) throws -> [Double] {
            try sim.ids(group: group).map { try #require(sim.time(of: $0, enteringState: "stopped")) - t0 }
        }
        let plain = try durations("plain"), small = try durations("small"), big = try durations("big")
        #expect(mean(small) > mean(plain) + 10, "plain \(mean(plain)), hibernate \(mean(small))")
        // 60 GiB more at 2 s per GiB: 120 s more on average.
        #expect(abs((mean(big) - mean(small)) - 120) < 15, "small \(mean(small)), big \(mean(big))")
        // The memory term is added to every draw.
        #expect(big.allSatisfy { $0 >= 128 + 40.0 / 10 && $0 <= 128 + 80 * 5 })
        #expect(small.allSatisfy { $0 >= 8 + 40.0 / 10 && $0 <= 8 + 80 * 5 })
    }

    @Test("Force halves the stop")
    func forceStop() throws {
        func durations(force: Bool) throws -> [Double] {
            let sim = Harness(makeSpec([makeGroup("g", 50)]))
            let ids = sim.ids(group: "g")
            try sim.call("StopInstances", list("InstanceId", ids) + (force ? ["Force": "true"] : [:]))
            sim.advance(by: 10_000)
            return try ids.map { try #require(sim.time(of: $0, enteringState: "stopped")) - t0 }
        }
        let normal = try durations(force: false), forced = try durations(force: true)
        for (a, b) in zip(normal, forced) { #expect(abs(b - a / 2) < 1e-6) }
    }

    @Test("state reasons: Client.UserInitiatedHibernate / Shutdown and 'User initiated (date GMT)'")
    func stateReasons() throws {
        let sim = Harness(makeSpec([makeGroup("g", 4)]))
        let ids = sim.ids(group: "g")
        sim.advance(to: t0 + 42)
        let when = sim.now
        try sim.call("StopInstances", list("InstanceId", [ids[0], ids[1]]) + ["Hibernate": "true"])
        try sim.call("StopInstances", list("InstanceId", [ids[2]]))
        sim.advance(by: 10_000)
        let reply = try sim.call("DescribeInstances", list("InstanceId", ids))
        let byID = Dictionary(uniqueKeysWithValues: reply.instances.map { ($0.string("instanceId")!, $0) })
        for id in [ids[0], ids[1]] {
            #expect(byID[id]?["stateReason", "code"]?.text == "Client.UserInitiatedHibernate")
            #expect(byID[id]?["stateReason", "message"]?.text == "Client.UserInitiatedHibernate: User initiated hibernate")
            #expect(byID[id]?.string("reason") == "User initiated (\(utcStamp(when)) GMT)")
        }
        #expect(byID[ids[2]]?["stateReason", "code"]?.text == "Client.UserInitiatedShutdown")
        #expect(byID[ids[2]]?["stateReason", "message"]?.text == "Client.UserInitiatedShutdown: User initiated shutdown")
        #expect(byID[ids[2]]?.string("reason") == "User initiated (\(utcStamp(when)) GMT)")
        // The one left running has no state reason and an empty reason.
        #expect(byID[ids[3]]?.child("stateReason") == nil)
        #expect(byID[ids[3]]?.string("reason") == "")
        let reason = try #require(byID[ids[0]]?.string("reason"))
        #expect(reason.wholeMatch(of: /User initiated \(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} GMT\)/) != nil)
    }

    @Test("starting from hibernation is faster than a cold boot on average; launchTime is the start's time")
    func resumeFasterThanColdBoot() throws {
        let sim = Harness(makeSpec([makeGroup("hib", 150), makeGroup("cold", 150)]))
        let hib = sim.ids(group: "hib"), cold = sim.ids(group: "cold")
        try sim.call("StopInstances", list("InstanceId", hib) + ["Hibernate": "true"])
        try sim.call("StopInstances", list("InstanceId", cold))
        sim.advance(by: 10_000)
        #expect(sim.state.count(in: .stopped) == 300)
        let before = try sim.call("DescribeInstances", list("InstanceId", [hib[0]]))
        let oldLaunch = try #require(before.instances.first?.string("launchTime").flatMap(ISO8601.parse))
        #expect(Double(oldLaunch) < t0 - 86_400 + 1)

        let startedAt = sim.now
        let reply = try sim.call("StartInstances", list("InstanceId", hib + cold))
        #expect(reply.changes.allSatisfy { $0.previous == "stopped" && $0.current == "pending" })
        sim.advance(by: 10_000)
        func boot(_ ids: [String]) throws -> [Double] {
            try ids.map { try #require(sim.time(of: $0, enteringState: "running", after: startedAt)) - startedAt }
        }
        let resume = try boot(hib), coldBoot = try boot(cold)
        #expect(mean(resume) < mean(coldBoot) / 2, "resume \(mean(resume)), cold boot \(mean(coldBoot))")
        let timings = Timings()
        #expect(resume.allSatisfy { $0 >= timings.resume.median / 10 && $0 <= timings.resume.p95 * 5 })
        #expect(coldBoot.allSatisfy { $0 >= timings.coldBoot.median / 10 && $0 <= timings.coldBoot.p95 * 5 })

        let after = try sim.call("DescribeInstances", list("InstanceId", [hib[0], cold[0]]))
        for item in after.instances {
            #expect(item["instanceState", "name"]?.text == "running")
            #expect(item.string("launchTime").flatMap(ISO8601.parse) == Int64(startedAt))
            #expect(item.child("stateReason") == nil)
            #expect(item.string("reason") == "")
        }
    }

    @Test("status: initializing after running, ok after the statusOk draw; not-applicable when stopped")
    func statusChecks() throws {
        let sim = Harness(makeSpec([makeGroup("g", 20) {
            $0.initialState = .stopped
            $0.timings.coldBoot = DurationDistribution(median: 10, p95: 20)
            $0.timings.statusOk = DurationDistribution(median: 1000, p95: 1500)
        }]))
        let ids = sim.ids(group: "g")
        func statuses() throws -> [String] {
            let reply = try sim.call("DescribeInstanceStatus", list("InstanceId", ids) + ["IncludeAllInstances": "true"])
            #expect(reply.status == 200)
            return reply.root.items("instanceStatusSet").map { $0["instanceStatus", "status"]?.text ?? "?" }
        }
        #expect(try statuses() == Array(repeating: "not-applicable", count: 20))
        try sim.call("StartInstances", list("InstanceId", ids))
        #expect(try statuses() == Array(repeating: "not-applicable", count: 20))
        sim.advance(by: 100) // every instance running (cold boot at most 100 s), none ok yet (at least 100 s more)
        #expect(sim.state.count(in: .running) == 20)
        #expect(try statuses() == Array(repeating: "initializing", count: 20))
        let initializing = try sim.call("DescribeInstanceStatus", list("InstanceId", [ids[0]]))
        #expect(initializing.root.items("instanceStatusSet").first?["systemStatus", "status"]?.text == "initializing")
        #expect(initializing.root.items("instanceStatusSet").first?["instanceStatus"]?.items("details").first?.string("status") == "initializing")
        sim.advance(by: 20_000)
        #expect(try statuses() == Array(repeating: "ok", count: 20))
        for id in ids {
            let status = sim.state.events.filter { $0.instanceID == id && $0.kind == .status }
            #expect(status.map { "\($0.from)->\($0.to)" } == ["not-applicable->initializing", "initializing->ok"])
            let running = try #require(sim.time(of: id, enteringState: "running"))
            #expect(status.first?.time == running)
            #expect(status.last!.time - running >= 100)
        }
    }

    @Test("IncludeAllInstances false lists only running instances")
    func includeAllInstances() throws {
        let sim = Harness(makeSpec([makeGroup("up", 5), makeGroup("down", 3) { $0.initialState = .stopped },
                                    makeGroup("hib", 2) { $0.initialState = .hibernated }]))
        let running = try sim.call("DescribeInstanceStatus")
        #expect(Set(running.root.items("instanceStatusSet").compactMap { $0.string("instanceId") }) == Set(sim.ids(group: "up")))
        let explicitFalse = try sim.call("DescribeInstanceStatus", ["IncludeAllInstances": "false"])
        #expect(explicitFalse.root.items("instanceStatusSet").count == 5)
        let all = try sim.call("DescribeInstanceStatus", ["IncludeAllInstances": "true"])
        #expect(all.root.items("instanceStatusSet").count == 10)
        // Asking by id for a stopped instance without IncludeAllInstances gives nothing.
        let stoppedByID = try sim.call("DescribeInstanceStatus", list("InstanceId", sim.ids(group: "down")))
        #expect(stoppedByID.root.items("instanceStatusSet").isEmpty)
        // Hibernated-at-start instances are stopped, with the hibernate reason.
        let hib = try sim.call("DescribeInstances", list("InstanceId", sim.ids(group: "hib")))
        #expect(hib.instances.allSatisfy { $0["instanceState", "name"]?.text == "stopped" && $0["stateReason", "code"]?.text == "Client.UserInitiatedHibernate" })
    }

    // MARK: Errors fail the whole call and change nothing

    @Test("unknown ids: InvalidInstanceID.NotFound naming every missing id; nothing changes")
    func notFound() throws {
        let sim = Harness(makeSpec([makeGroup("g", 3)]))
        let ids = sim.ids(group: "g")
        let missing = ["i-0123456789abcdef0", "i-0fedcba9876543210"]
        let before = sim.snapshot
        for action in ["StopInstances", "StartInstances"] {
            let reply = try sim.call(action, list("InstanceId", [ids[0], missing[0], ids[1], missing[1]]))
            #expect(reply.status == 400)
            #expect(reply.errorCode == "InvalidInstanceID.NotFound")
            #expect(missing.allSatisfy { reply.errorMessage.contains($0) }, "\(reply.errorMessage)")
            #expect(!reply.errorMessage.contains(ids[0]))
            #expect(reply.requestID != nil)
        }
        let describe = try sim.call("DescribeInstances", list("InstanceId", [ids[2], missing[1]]))
        #expect(describe.errorCode == "InvalidInstanceID.NotFound")
        #expect(describe.errorMessage.contains(missing[1]))
        let tags = try sim.call("CreateTags", list("ResourceId", [ids[0], missing[0]]) + ["Tag.1.Key": "K", "Tag.1.Value": "V"])
        #expect(tags.errorCode == "InvalidInstanceID.NotFound")
        #expect(sim.snapshot == before)
    }

    @Test("malformed ids: InvalidInstanceID.Malformed", arguments: ["i-xyz", "instance-1", "i-0123456789ABCDEF0", "i-012345678", ""])
    func malformed(id: String) throws {
        let sim = Harness(makeSpec([makeGroup("g", 2)]))
        let before = sim.snapshot
        let reply = try sim.call("StopInstances", list("InstanceId", [sim.ids(group: "g")[0], id]))
        #expect(reply.errorCode == "InvalidInstanceID.Malformed")
        #expect(reply.status == 400)
        #expect(sim.snapshot == before)
    }

    @Test("hibernating an unconfigured instance: UnsupportedHibernationConfiguration for the whole call")
    func unsupportedHibernation() throws {
        let sim = Harness(makeSpec([makeGroup("g", 10) { $0.hibernationConfigured = 0.5 }]))
        let configured = sim.state.instances.filter(\.hibernationConfigured).map(\.id)
        let unconfigured = sim.state.instances.filter { !$0.hibernationConfigured }.map(\.id)
        #expect(configured.count == 5 && unconfigured.count == 5)
        let before = sim.snapshot
        let reply = try sim.call("StopInstances", list("InstanceId", [configured[0], unconfigured[0], configured[1]]) + ["Hibernate": "true"])
        #expect(reply.errorCode == "UnsupportedHibernationConfiguration")
        #expect(reply.errorMessage.contains(unconfigured[0]))
        #expect(!reply.errorMessage.contains(configured[0]))
        #expect(sim.snapshot == before)
        // Even a dry run is refused for it.
        let dry = try sim.call("StopInstances", list("InstanceId", [unconfigured[1]]) + ["Hibernate": "true", "DryRun": "true"])
        #expect(dry.errorCode == "UnsupportedHibernationConfiguration")
        // A plain stop of the same instance is fine, and so is hibernating the configured ones.
        #expect(try sim.call("StopInstances", list("InstanceId", [unconfigured[0]])).status == 200)
        let ok = try sim.call("StopInstances", list("InstanceId", [configured[0], configured[1]]) + ["Hibernate": "true"])
        #expect(ok.status == 200)
        #expect(ok.changes.map(\.current) == ["stopping", "stopping"])
    }

    @Test("stopping a one-time spot instance: UnsupportedOperation, nothing changes")
    func oneTimeSpot() throws {
        let sim = Harness(makeSpec([makeGroup("g", 10) { $0.oneTimeSpot = 0.2; $0.spot = 0.3 }]))
        let oneTime = sim.state.instances.filter(\.oneTimeSpot).map(\.id)
        let persistent = sim.state.instances.filter { $0.lifecycle == "spot" && !$0.oneTimeSpot }.map(\.id)
        let onDemand = sim.state.instances.filter { $0.lifecycle == nil }.map(\.id)
        #expect(oneTime.count == 2 && persistent.count == 3 && onDemand.count == 5)
        let before = sim.snapshot
        for hibernate in [false, true] {
            let reply = try sim.call("StopInstances", list("InstanceId", [onDemand[0], oneTime[0]]) + (hibernate ? ["Hibernate": "true"] : [:]))
            #expect(reply.errorCode == "UnsupportedOperation")
            #expect(reply.errorMessage.contains(oneTime[0]))
            #expect(reply.errorMessage.contains("one-time Spot Instance request"))
        }
        #expect(sim.snapshot == before)
        // A persistent spot instance can be stopped.
        #expect(try sim.call("StopInstances", list("InstanceId", persistent) + ["Hibernate": "true"]).status == 200)
    }

    @Test("hibernating an instance started less than hibernateReadyAfter ago: UnsupportedOperation, until it is ready")
    func notReadyToHibernate() throws {
        let sim = Harness(makeSpec([makeGroup("g", 3) {
            $0.initialState = .stopped
            $0.timings.coldBoot = DurationDistribution(median: 10, p95: 20)
        }]) { $0.hibernateReadyAfter = 300 })
        let ids = sim.ids(group: "g")
        let startedAt = sim.now
        try sim.call("StartInstances", list("InstanceId", ids))
        sim.advance(by: 200)
        #expect(sim.state.count(in: .running) == 3)
        let before = sim.snapshot
        let reply = try sim.call("StopInstances", list("InstanceId", ids) + ["Hibernate": "true"])
        #expect(reply.errorCode == "UnsupportedOperation")
        #expect(reply.errorMessage.contains("not ready to hibernate yet"))
        #expect(sim.snapshot == before)
        sim.advance(to: startedAt + 299)
        #expect(try sim.call("StopInstances", list("InstanceId", [ids[0]]) + ["Hibernate": "true"]).errorCode == "UnsupportedOperation")
        sim.advance(to: startedAt + 300)
        let accepted = try sim.call("StopInstances", list("InstanceId", [ids[0], ids[1]]) + ["Hibernate": "true"])
        #expect(accepted.status == 200, "\(accepted.body)")
        // A plain stop was never subject to the rule.
        #expect(try sim.call("StopInstances", list("InstanceId", [ids[2]])).status == 200)
    }

    @Test("stopping an instance-store instance: UnsupportedOperation")
    func instanceStore() throws {
        let sim = Harness(makeSpec([makeGroup("ebs", 2), makeGroup("eph", 2) { $0.rootDeviceType = "instance-store" }]))
        let before = sim.snapshot
        let reply = try sim.call("StopInstances", list("InstanceId", sim.ids(group: "ebs") + [sim.ids(group: "eph")[1]]))
        #expect(reply.errorCode == "UnsupportedOperation")
        #expect(reply.errorMessage.contains(sim.ids(group: "eph")[1]))
        #expect(reply.errorMessage.contains("'ebs'"))
        #expect(sim.snapshot == before)
        let described = try sim.call("DescribeInstances", list("InstanceId", sim.ids(group: "eph")))
        #expect(described.instances.allSatisfy { $0.string("rootDeviceType") == "instance-store" })
    }

    @Test("IncorrectInstanceState: starting a stopping instance, stopping a pending one")
    func incorrectState() throws {
        let sim = Harness(makeSpec([makeGroup("up", 2), makeGroup("down", 2) { $0.initialState = .stopped }]))
        let up = sim.ids(group: "up"), down = sim.ids(group: "down")
        try sim.call("StopInstances", list("InstanceId", [up[0]]))
        try sim.call("StartInstances", list("InstanceId", [down[0]]))
        #expect(sim.instance(up[0]).state == .stopping)
        #expect(sim.instance(down[0]).state == .pending)
        let before = sim.snapshot
        let start = try sim.call("StartInstances", list("InstanceId", [down[1], up[0]]))
        #expect(start.errorCode == "IncorrectInstanceState")
        #expect(start.errorMessage.contains(up[0]))
        let stop = try sim.call("StopInstances", list("InstanceId", [up[1], down[0]]))
        #expect(stop.errorCode == "IncorrectInstanceState")
        #expect(stop.errorMessage.contains(down[0]))
        #expect(sim.snapshot == before)
        // Repeating a move already under way is not an error and changes nothing.
        let again = try sim.call("StopInstances", list("InstanceId", [up[0]]))
        #expect(again.changes.first.map { "\($0.previous)->\($0.current)" } == "stopping->stopping")
        let startAgain = try sim.call("StartInstances", list("InstanceId", [down[0], up[1]]))
        #expect(startAgain.changes.map { "\($0.previous)->\($0.current)" } == ["pending->pending", "running->running"])
        #expect(sim.snapshot == before)
    }

    @Test("InsufficientInstanceCapacity when noCapacity names the instance's type and zone")
    func noCapacity() throws {
        let sim = Harness(makeSpec([makeGroup("g", 4) {
            $0.initialState = .stopped
            $0.zones = ["us-east-1a", "us-east-1b"]
        }]) { $0.faults.noCapacity = [.init(instanceType: "m5.large", zone: "us-east-1a")] })
        let ids = sim.ids(group: "g")
        let inA = ids.filter { sim.instance($0).zone == "us-east-1a" }, inB = ids.filter { sim.instance($0).zone == "us-east-1b" }
        #expect(inA.count == 2 && inB.count == 2)
        let before = sim.snapshot
        let reply = try sim.call("StartInstances", list("InstanceId", [inB[0], inA[0]]))
        #expect(reply.errorCode == "InsufficientInstanceCapacity")
        #expect(reply.status == 500)
        #expect(reply.errorMessage.contains("m5.large") && reply.errorMessage.contains("us-east-1a"))
        #expect(sim.snapshot == before)
        let ok = try sim.call("StartInstances", list("InstanceId", inB))
        #expect(ok.status == 200)
        #expect(ok.changes.allSatisfy { $0.current == "pending" })
    }

    @Test("a permitted dry run answers DryRunOperation with HTTP 412 and changes nothing")
    func dryRun() throws {
        let sim = Harness(makeSpec([makeGroup("up", 2), makeGroup("down", 2) { $0.initialState = .stopped }]))
        let before = sim.snapshot
        for (action, ids, extra) in [("StopInstances", sim.ids(group: "up"), ["Hibernate": "true"]),
                                     ("StopInstances", sim.ids(group: "up"), [:]),
                                     ("StartInstances", sim.ids(group: "down"), [:])] {
            let reply = try sim.call(action, list("InstanceId", ids) + extra + ["DryRun": "true"])
            #expect(reply.status == 412)
            #expect(reply.errorCode == "DryRunOperation")
        }
        let tags = try sim.call("CreateTags", list("ResourceId", sim.ids(group: "up")) + ["Tag.1.Key": "K", "Tag.1.Value": "V", "DryRun": "true"])
        #expect(tags.status == 412 && tags.errorCode == "DryRunOperation")
        #expect(sim.snapshot == before)
    }

    @Test("an empty id list is MissingParameter; an unknown action is InvalidAction")
    func missingParameters() throws {
        let sim = Harness(makeSpec([makeGroup("g", 1)]))
        #expect(try sim.call("StopInstances").errorCode == "MissingParameter")
        #expect(try sim.call("StartInstances").errorCode == "MissingParameter")
        #expect(try sim.call("CreateTags", ["Tag.1.Key": "a"]).errorCode == "MissingParameter")
        #expect(try sim.call("TerminateInstances", list("InstanceId", sim.ids(group: "g"))).errorCode == "InvalidAction")
        #expect(sim.state.count(in: .running) == 1)
    }

    // MARK: Paging and parameters

    @Test("MaxResults outside 5...1000 is InvalidParameterValue", arguments: ["4", "1001", "0", "-5", "ten"])
    func maxResultsRange(value: String) throws {
        let sim = Harness(makeSpec([makeGroup("g", 10)]))
        for action in ["DescribeInstances", "DescribeInstanceStatus"] {
            let reply = try sim.call(action, ["MaxResults": value])
            #expect(reply.errorCode == "InvalidParameterValue", "\(action) \(value)")
            #expect(reply.status == 400)
        }
    }

    @Test("MaxResults 5 and 1000 are accepted")
    func maxResultsBounds() throws {
        let sim = Harness(makeSpec([makeGroup("g", 12)]))
        let five = try sim.call("DescribeInstances", ["MaxResults": "5"])
        #expect(five.instanceIDs.count == 5)
        #expect(five.nextToken != nil)
        let thousand = try sim.call("DescribeInstances", ["MaxResults": "1000"])
        #expect(thousand.instanceIDs.count == 12)
        #expect(thousand.nextToken == nil)
    }

    @Test("MaxResults with InstanceId is InvalidParameterCombination")
    func maxResultsWithIDs() throws {
        let sim = Harness(makeSpec([makeGroup("g", 10)]))
        for action in ["DescribeInstances", "DescribeInstanceStatus"] {
            let reply = try sim.call(action, list("InstanceId", [sim.ids(group: "g")[0]]) + ["MaxResults": "10"])
            #expect(reply.errorCode == "InvalidParameterCombination", "\(action)")
        }
    }

    @Test("DescribeInstanceStatus with 101 ids is refused; with 100 it answers")
    func statusIDLimit() throws {
        let sim = Harness(makeSpec([makeGroup("g", 101)]))
        let ids = sim.ids(group: "g")
        let refused = try sim.call("DescribeInstanceStatus", list("InstanceId", ids))
        #expect(refused.errorCode == "InvalidParameterValue")
        #expect(refused.errorMessage.contains("101"))
        let hundred = try sim.call("DescribeInstanceStatus", list("InstanceId", Array(ids.prefix(100))))
        #expect(hundred.status == 200)
        #expect(hundred.root.items("instanceStatusSet").count == 100)
    }

    @Test("10,000 instances in pages of 1000: 10 pages, every id exactly once; a bad token is refused")
    func pagination() throws {
        let sim = Harness(makeSpec([makeGroup("a", 6000), makeGroup("b", 4000)]))
        var seen: [String] = []
        var token: String?
        var pages = 0
        repeat {
            let reply = try sim.call("DescribeInstances", ["MaxResults": "1000"] + (token.map { ["NextToken": $0] } ?? [:]))
            #expect(reply.status == 200)
            pages += 1
            #expect(reply.instanceIDs.count == 1000)
            seen += reply.instanceIDs
            token = reply.nextToken
        } while token != nil && pages < 20
        #expect(pages == 10)
        #expect(seen.count == 10_000)
        #expect(Set(seen) == Set(sim.state.instances.map(\.id)))

        // Filtered paging: only the matching instances, still each once.
        var filtered: [String] = []
        token = nil
        pages = 0
        repeat {
            let reply = try sim.call("DescribeInstances", ["MaxResults": "1000"] + filters([("tag:Name", ["b-*"])])
                                     + (token.map { ["NextToken": $0] } ?? [:]))
            pages += 1
            filtered += reply.instanceIDs
            token = reply.nextToken
        } while token != nil && pages < 20
        #expect(pages == 4)
        #expect(Set(filtered) == Set(sim.ids(group: "b")) && filtered.count == 4000)

        for bad in ["garbage", "not base64 at all!", Data("torpor-sim:-3".utf8).base64EncodedString(), Data("other:5".utf8).base64EncodedString()] {
            let reply = try sim.call("DescribeInstances", ["MaxResults": "1000", "NextToken": bad])
            #expect(reply.errorCode == "InvalidParameterValue", "\(bad)")
        }
    }

    // MARK: Filters

    @Test("filters: tag:K, instance-state-name, hibernation-options.configured, wildcards; several filters all apply")
    func describeFilters() throws {
        let sim = Harness(makeSpec([
            makeGroup("web", 20) { $0.tags = [("Tier", "web"), ("Env", "dev")]; $0.hibernationConfigured = 0.5 },
            makeGroup("db", 5) { $0.tags = [("Tier", "db"), ("Env", "prod")]; $0.instanceType = "r5.large" },
            makeGroup("ci", 4) { $0.tags = [("Tier", "ci"), ("Env", "dev")]; $0.initialState = .stopped },
        ]))
        func ids(_ pairs: [(String, [String])]) throws -> Set<String> {
            let reply = try sim.call("DescribeInstances", filters(pairs))
            #expect(reply.status == 200, "\(reply.errorMessage)")
            return Set(reply.instanceIDs)
        }
        let web = Set(sim.ids(group: "web")), db = Set(sim.ids(group: "db")), ci = Set(sim.ids(group: "ci"))
        #expect(try ids([("tag:Tier", ["web"])]) == web)
        #expect(try ids([("tag:Tier", ["web", "db"])]) == web.union(db))
        #expect(try ids([("tag:Env", ["dev"]), ("instance-state-name", ["running"])]) == web)
        #expect(try ids([("instance-state-name", ["stopped"])]) == ci)
        #expect(try ids([("instance-state-code", ["80"])]) == ci)
        #expect(try ids([("tag:Tier", ["web"]), ("hibernation-options.configured", ["false"])]).count == 10)
        #expect(try ids([("hibernation-options.configured", ["true"])]).count == 19)
        #expect(try ids([("instance-type", ["r5.large"])]) == db)
        #expect(try ids([("tag-key", ["Tier"])]).count == 29)
        #expect(try ids([("tag-value", ["prod"])]) == db)
        #expect(try ids([("tag:Missing", ["x"])]).isEmpty)
        // Wildcards: * any run, ? one character.
        #expect(try ids([("tag:Name", ["web-1*"])]).count == 11) // web-1, web-10 ... web-19
        #expect(try ids([("tag:Name", ["web-?"])]).count == 9) // web-1 ... web-9
        #expect(try ids([("tag:Tier", ["*"])]).count == 29)
        #expect(try ids([("tag:Name", ["*-2*"])]) == Set(["web-2", "web-20", "db-2", "ci-2"].flatMap { name in
            sim.state.instances.filter { $0.tags.contains { $0.key == "Name" && $0.value == name } }.map(\.id) }))
        #expect(try ids([("instance-id", [sim.ids(group: "db")[0]])]) == [sim.ids(group: "db")[0]])
        let address = sim.instance(sim.ids(group: "ci")[1]).privateIP
        #expect(try ids([("private-ip-address", [address])]) == [sim.ids(group: "ci")[1]])
        #expect(try ids([("availability-zone", ["us-east-1a"])]).count == 10 + 3 + 2)
    }

    @Test("an unknown filter is InvalidParameterValue", arguments: ["DescribeInstances", "DescribeInstanceStatus"])
    func unknownFilter(action: String) throws {
        let sim = Harness(makeSpec([makeGroup("g", 2)]))
        let reply = try sim.call(action, filters([("color", ["blue"])]))
        #expect(reply.errorCode == "InvalidParameterValue")
        #expect(reply.errorMessage.contains("color"))
    }

    @Test("DescribeInstanceStatus filters by state name")
    func statusFilters() throws {
        let sim = Harness(makeSpec([makeGroup("up", 3), makeGroup("down", 2) { $0.initialState = .stopped }]))
        let reply = try sim.call("DescribeInstanceStatus", ["IncludeAllInstances": "true"] + filters([("instance-state-name", ["stopped"])]))
        #expect(Set(reply.root.items("instanceStatusSet").compactMap { $0.string("instanceId") }) == Set(sim.ids(group: "down")))
        #expect(try sim.call("DescribeInstanceStatus", filters([("tag:Name", ["x"])])).errorCode == "InvalidParameterValue")
    }

    @Test("a * in a pattern also matches text that contains a literal *")
    func globLiteralStar() {
        #expect(FleetState.glob("a*", "a*b"))
        #expect(FleetState.glob("*x", "*yx"))
    }

    @Test("the glob matcher", arguments: [
        ("web-*", "web-12", true), ("web-*", "db-1", false), ("*", "", true), ("?", "", false), ("a?c", "abc", true),
        ("a*c", "abxxc", true), ("a*c", "abxxd", false), ("*a*b*", "xxaYYbZZ", true), ("exact", "exact", true), ("exact", "exactly", false),
    ])
    func glob(pattern: String, text: String, matches: Bool) {
        #expect(FleetState.glob(pattern, text) == matches)
    }

    // MARK: Faults and interruptions

    @Test("startFailureRate 1: pending, then stopped with Client.InternalError")
    func startFailure() throws {
        let sim = Harness(makeSpec([makeGroup("g", 10) { $0.initialState = .stopped }]) { $0.faults.startFailureRate = 1 })
        let ids = sim.ids(group: "g")
        let reply = try sim.call("StartInstances", list("InstanceId", ids))
        #expect(reply.status == 200)
        #expect(reply.changes.allSatisfy { $0.current == "pending" })
        sim.advance(by: 10_000)
        #expect(sim.state.count(in: .stopped) == 10)
        let described = try sim.call("DescribeInstances", list("InstanceId", ids))
        #expect(described.instances.allSatisfy { $0["stateReason", "code"]?.text == "Client.InternalError" })
        for id in ids {
            let events = sim.stateEvents(id)
            #expect(events.map { "\($0.from)->\($0.to)" } == ["stopped->pending", "pending->stopped"])
            #expect(events.last?.cause == "injected-fault")
            #expect(!sim.state.events.contains { $0.instanceID == id && $0.kind == .status })
        }
    }

    @Test("spot interruptions: stop sets Server.SpotInstanceShutdown, terminate Server.SpotInstanceTermination")
    func spotInterruption() throws {
        let clock = ManualClock(start: t0)
        let engine = SimEngine(spec: makeSpec([makeGroup("spot", 4) { $0.spot = 1 }]), clock: clock, throttle: .off)
        let ids = engine.instances().map(\.id)
        try engine.interrupt([ids[0]], behavior: "stop")
        try engine.interrupt([ids[1]], behavior: "terminate")
        try engine.interrupt([ids[2]], behavior: "hibernate")
        func describe() throws -> [String: XMLNode] {
            let reply = try engineCall(engine, "DescribeInstances", list("InstanceId", ids))
            return Dictionary(uniqueKeysWithValues: reply.instances.map { ($0.string("instanceId")!, $0) })
        }
        var now = try describe()
        #expect(now[ids[0]]?["instanceState", "name"]?.text == "stopping")
        #expect(now[ids[0]]?["stateReason", "code"]?.text == "Server.SpotInstanceShutdown")
        #expect(now[ids[1]]?["instanceState", "name"]?.text == "shutting-down")
        #expect(now[ids[1]]?["stateReason", "code"]?.text == "Server.SpotInstanceTermination")
        #expect(now[ids[2]]?["stateReason", "code"]?.text == "Server.SpotInstanceShutdown")
        #expect(now[ids[3]]?["instanceState", "name"]?.text == "running")
        clock.advance(by: 10_000)
        now = try describe()
        #expect(now[ids[0]]?["instanceState", "name"]?.text == "stopped")
        #expect(now[ids[1]]?["instanceState", "name"]?.text == "terminated")
        #expect(now[ids[1]]?["instanceState", "code"]?.text == "48")
        #expect(now[ids[2]]?["instanceState", "name"]?.text == "stopped")
        let events = engine.events()
        #expect(events.filter { $0.instanceID == ids[1] && $0.kind == .state }.map { "\($0.from)->\($0.to)" }
            == ["running->shutting-down", "shutting-down->terminated"])
        #expect(events.filter { $0.kind == .state && $0.from == "running" }.allSatisfy { $0.cause == "interruption" })
        // A terminated instance cannot be started or stopped.
        #expect(try engineCall(engine, "StartInstances", list("InstanceId", [ids[1]])).errorCode == "IncorrectInstanceState")
        #expect(try engineCall(engine, "StopInstances", list("InstanceId", [ids[1]])).errorCode == "IncorrectInstanceState")
        // The interrupted-to-stopped instance resumes (hibernate) or boots again.
        #expect(try engineCall(engine, "StartInstances", list("InstanceId", [ids[0], ids[2]])).status == 200)
        // Unknown ids are refused.
        #expect(throws: SimAPIError.self) { try engine.interrupt(["i-0123456789abcdef0"], behavior: "stop") }
    }

    // MARK: Tags

    @Test("CreateTags adds new tags and overwrites existing ones")
    func createTags() throws {
        let sim = Harness(makeSpec([makeGroup("g", 3) { $0.tags = [("Env", "dev")] }]))
        let ids = sim.ids(group: "g")
        let reply = try sim.call("CreateTags", list("ResourceId", [ids[0], ids[1]])
            + ["Tag.1.Key": "Env", "Tag.1.Value": "prod", "Tag.2.Key": "Owner", "Tag.2.Value": "alice", "Tag.3.Key": "Empty"])
        #expect(reply.status == 200)
        #expect(reply.root.string("return") == "true")
        let described = try sim.call("DescribeInstances", list("InstanceId", ids))
        func tags(_ item: XMLNode) -> [String: String] {
            Dictionary(uniqueKeysWithValues: item.items("tagSet").map { ($0.string("key")!, $0.string("value") ?? "") })
        }
        let byID = Dictionary(uniqueKeysWithValues: described.instances.map { ($0.string("instanceId")!, tags($0)) })
        #expect(byID[ids[0]] == ["Env": "prod", "Owner": "alice", "Empty": "", "Name": "g-1"])
        #expect(byID[ids[1]]?["Env"] == "prod")
        #expect(byID[ids[2]] == ["Env": "dev", "Name": "g-3"])
        // Each key once: the overwrite did not add a second Env.
        #expect(sim.instance(ids[0]).tags.filter { $0.key == "Env" }.count == 1)
        let filtered = try sim.call("DescribeInstances", filters([("tag:Owner", ["alice"])]))
        #expect(Set(filtered.instanceIDs) == Set([ids[0], ids[1]]))
    }

    // MARK: Spot prices and instance types

    static let spotSpec = makeSpec(seed: 9, [makeGroup("g", 1)]) {
        $0.spotPrices = [
            SpotSeriesSpec(instanceType: "m5.large", zone: "us-east-1a", steps: [.init(at: 0, price: 0.035), .init(at: 7200, price: 0.052)]),
            SpotSeriesSpec(instanceType: "c5.xlarge", zone: "us-east-1a",
                           randomWalk: .init(start: 0.068, volatility: 0.04, every: 300, floor: 0.001)),
        ]
    }

    func prices(_ reply: Reply) -> [(type: String, price: Double, time: Int64)] {
        reply.root.items("spotPriceHistorySet").map {
            ($0.string("instanceType") ?? "", Double($0.string("spotPrice") ?? "") ?? -1, ISO8601.parse($0.string("timestamp") ?? "") ?? -1)
        }
    }

    @Test("spot price history: the changes in range plus the last before StartTime, newest first")
    func spotPriceHistory() throws {
        let sim = Harness(Self.spotSpec)
        sim.advance(by: 4 * 3600)
        let start = Int64(t0)
        let wide = try sim.call("DescribeSpotPriceHistory", list("InstanceType", ["m5.large"])
            + ["StartTime": ISO8601.format(start + 3600), "EndTime": ISO8601.format(start + 3 * 3600)])
        #expect(wide.status == 200)
        let rows = prices(wide)
        #expect(rows.map(\.price) == [0.052, 0.035])
        #expect(rows.map(\.time) == [start + 7200, start])
        #expect(wide.root.items("spotPriceHistorySet").allSatisfy {
            $0.string("availabilityZone") == "us-east-1a" && $0.string("productDescription") == "Linux/UNIX" })

        let late = try sim.call("DescribeSpotPriceHistory", list("InstanceType", ["m5.large"])
            + ["StartTime": ISO8601.format(start + 9000), "EndTime": ISO8601.format(start + 10_000)])
        #expect(prices(late).map(\.price) == [0.052])
        #expect(prices(late).map(\.time) == [start + 7200])

        // Without times: the price in force now.
        let current = try sim.call("DescribeSpotPriceHistory", list("InstanceType", ["m5.large"]))
        #expect(prices(current).map(\.price) == [0.052])

        // Every series together is still newest first.
        let all = try sim.call("DescribeSpotPriceHistory", ["StartTime": ISO8601.format(start), "EndTime": ISO8601.format(start + 3600)])
        let times = prices(all).map(\.time)
        #expect(times == times.sorted(by: >))
        #expect(prices(all).filter { $0.type == "c5.xlarge" }.count == 13) // t0, t0+5m ... t0+60m
        #expect(prices(all).filter { $0.type == "m5.large" }.count == 1)

        // Filters and bad input.
        let filtered = try sim.call("DescribeSpotPriceHistory", filters([("availability-zone", ["us-east-1b"])]))
        #expect(prices(filtered).isEmpty)
        #expect(try sim.call("DescribeSpotPriceHistory", filters([("color", ["x"])])).errorCode == "InvalidParameterValue")
        #expect(try sim.call("DescribeSpotPriceHistory", ["StartTime": "yesterday"]).errorCode == "InvalidParameterValue")
    }

    @Test("spot price random walks are deterministic for a seed and differ for another")
    func spotRandomWalk() throws {
        func walk(seed: UInt64, queries: [Double]) throws -> [Double] {
            var spec = Self.spotSpec
            spec.seed = seed
            let sim = Harness(spec)
            // The order and spacing of queries must not matter.
            for hours in queries {
                sim.advance(to: t0 + hours * 3600)
                try sim.call("DescribeSpotPriceHistory", list("InstanceType", ["c5.xlarge"]))
            }
            sim.advance(to: t0 + 10 * 3600)
            let reply = try sim.call("DescribeSpotPriceHistory", list("InstanceType", ["c5.xlarge"])
                + ["StartTime": ISO8601.format(Int64(t0)), "EndTime": ISO8601.format(Int64(t0) + 10 * 3600)])
            return prices(reply).map(\.price)
        }
        let a = try walk(seed: 9, queries: []), b = try walk(seed: 9, queries: [0.5, 1, 7.25]), c = try walk(seed: 10, queries: [])
        #expect(a.count == 121)
        #expect(a == b)
        #expect(a != c)
        #expect(a.last == 0.068) // the oldest point is the start price
        #expect(a.allSatisfy { $0 >= 0.001 })
        #expect(Set(a).count > 60, "the walk hardly moves")
    }

    @Test("spot history never shows prices after the simulated present")
    func spotHistoryNoFuture() throws {
        let sim = Harness(Self.spotSpec)
        sim.advance(by: 3600) // one hour in; the 0.052 step is due at two hours
        let reply = try sim.call("DescribeSpotPriceHistory", ["StartTime": ISO8601.format(Int64(t0)), "EndTime": ISO8601.format(Int64(t0) + 5 * 3600)])
        #expect(prices(reply).allSatisfy { Double($0.time) <= sim.now })
    }

    @Test("DescribeInstanceTypes: hibernation-supported filter, names, unknown types")
    func instanceTypes() throws {
        let sim = Harness(makeSpec([makeGroup("g", 1) { $0.instanceType = "z9.custom"; $0.memoryGiB = 3 }]))
        func names(_ reply: Reply) -> [String] { reply.root.items("instanceTypeSet").compactMap { $0.string("instanceType") } }
        let unsupported = try sim.call("DescribeInstanceTypes", filters([("hibernation-supported", ["false"])]))
        #expect(names(unsupported) == ["p3.2xlarge", "x1.16xlarge"])
        #expect(unsupported.root.items("instanceTypeSet").allSatisfy { $0.string("hibernationSupported") == "false" })
        let supported = try sim.call("DescribeInstanceTypes", filters([("hibernation-supported", ["true"])]))
        #expect(names(supported).contains("m5.large") && names(supported).contains("z9.custom"))
        #expect(!names(supported).contains("p3.2xlarge"))
        #expect(names(supported) == names(supported).sorted())
        let asked = try sim.call("DescribeInstanceTypes", list("InstanceType", ["m5.large", "z9.custom"]))
        let items = asked.root.items("instanceTypeSet")
        #expect(names(asked) == ["m5.large", "z9.custom"])
        #expect(items[0]["memoryInfo", "sizeInMiB"]?.text == "8192")
        #expect(items[1]["memoryInfo", "sizeInMiB"]?.text == "3072")
        let unknown = try sim.call("DescribeInstanceTypes", list("InstanceType", ["m5.large", "q1.nothing"]))
        #expect(unknown.errorCode == "InvalidInstanceType")
        #expect(unknown.errorMessage.contains("q1.nothing"))
        #expect(try sim.call("DescribeInstanceTypes", filters([("color", ["x"])])).errorCode == "InvalidParameterValue")
        let paged = try sim.call("DescribeInstanceTypes", ["MaxResults": "5"])
        #expect(names(paged).count == 5)
        #expect(paged.nextToken != nil)
    }
}
