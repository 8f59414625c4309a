import Foundation
import Testing
import TorporSigV4
@testable import TorporAWS
@testable import TorporEC2

/// EC2 answers as the service writes them, decoded by `EC2Decoding`; error
/// documents through `AWSQueryClient.serviceError`.
@Suite("XML decoding")
struct XMLDecodingTests {
    static let describeInstances = """
        <?xml version="1.0" encoding="UTF-8"?>
        <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
            <reservationSet>
                <item>
                    <reservationId>r-1234567890abcdef0</reservationId>
                    <ownerId>123456789012</ownerId>
                    <groupSet/>
                    <instancesSet>
                        <item>
                            <instanceId>i-1234567890abcdef0</instanceId>
                            <imageId>ami-bff32ccc</imageId>
                            <instanceState>
                                <code>16</code>
                                <name>running</name>
                            </instanceState>
                            <privateDnsName>ip-192-168-1-88.eu-west-1.compute.internal</privateDnsName>
                            <dnsName>ec2-54-194-252-215.eu-west-1.compute.amazonaws.com</dnsName>
                            <reason/>
                            <keyName>my_keypair</keyName>
                            <amiLaunchIndex>0</amiLaunchIndex>
                            <productCodes/>
                            <instanceType>t2.micro</instanceType>
                            <launchTime>2026-11-26T17:53:19.000Z</launchTime>
                            <placement>
                                <availabilityZone>eu-west-1c</availabilityZone>
                                <groupName/>
                                <tenancy>default</tenancy>
                            </placement>
                            <monitoring>
                                <state>disabled</state>
                            </monitoring>
                            <subnetId>subnet-56f5f633</subnetId>
                            <vpcId>vpc-11112222</vpcId>
                            <privateIpAddress>192.168.1.88</privateIpAddress>
                            <ipAddress>54.194.252.215</ipAddress>
                            <sourceDestCheck>true</sourceDestCheck>
                            <groupSet>
                                <item>
                                    <groupId>sg-e4076980</groupId>
                                    <groupName>SecurityGroup1</groupName>
                                </item>
                            </groupSet>
                            <architecture>x86_64</architecture>
                            <rootDeviceType>ebs</rootDeviceType>
                            <rootDeviceName>/dev/xvda</rootDeviceName>
                            <blockDeviceMapping>
                                <item>
                                    <deviceName>/dev/xvda</deviceName>
                                    <ebs>
                                        <volumeId>vol-1234567890abcdef0</volumeId>
                                        <status>attached</status>
                                        <attachTime>2015-12-22T10:44:09.000Z</attachTime>
                                        <deleteOnTermination>true</deleteOnTermination>
                                    </ebs>
                                </item>
                            </blockDeviceMapping>
                            <virtualizationType>hvm</virtualizationType>
                            <clientToken>xMcwG14507example</clientToken>
                            <tagSet>
                                <item>
                                    <key>Name</key>
                                    <value>Server_1</value>
                                </item>
                                <item>
                                    <key>team</key>
                                    <value>a &amp; b &lt;ops&gt;</value>
                                </item>
                                <item>
                                    <key>empty</key>
                                    <value/>
                                </item>
                            </tagSet>
                            <hypervisor>xen</hypervisor>
                            <networkInterfaceSet>
                                <item>
                                    <networkInterfaceId>eni-551ba033</networkInterfaceId>
                                    <privateIpAddress>10.0.0.99</privateIpAddress>
                                </item>
                            </networkInterfaceSet>
                            <ebsOptimized>false</ebsOptimized>
                            <hibernationOptions>
                                <configured>true</configured>
                            </hibernationOptions>
                        </item>
                    </instancesSet>
                </item>
                <item>
                    <reservationId>r-0abcdef1234567890</reservationId>
                    <ownerId>123456789012</ownerId>
                    <instancesSet>
                        <item>
                            <instanceId>i-0fedcba9876543210</instanceId>
                            <instanceState>
                                <code>80</code>
                                <name>stopped</name>
                            </instanceState>
                            <reason>User initiated (2026-11-26 10:00:00 GMT)</reason>
                            <stateReason>
                                <code>Client.UserInitiatedShutdown</code>
                                <message>Client.UserInitiatedShutdown: User initiated shutdown</message>
                            </stateReason>
                            <instanceType>m5.large</instanceType>
                            <launchTime>2026-11-26T12:00:00+02:00</launchTime>
                            <placement>
                                <availabilityZone>eu-west-1a</availabilityZone>
                            </placement>
                            <instanceLifecycle>spot</instanceLifecycle>
                            <spotInstanceRequestId>sir-abcd1234</spotInstanceRequestId>
                            <rootDeviceType>ebs</rootDeviceType>
                            <hibernationOptions>
                                <configured>false</configured>
                            </hibernationOptions>
                        </item>
                        <item>
                            <instanceId>i-0aaaabbbbccccdddd</instanceId>
                            <instanceState>
                                <code>272</code>
                                <name>running</name>
                            </instanceState>
                            <instanceType>c5.xlarge</instanceType>
                            <tagSet/>
                        </item>
                    </instancesSet>
                </item>
            </reservationSet>
            <nextToken>eyJ2IjoiMiIsImMiOiJ</nextToken>
        </DescribeInstancesResponse>
        """

    static let stopInstances = """
        <?xml version="1.0" encoding="UTF-8"?>
        <StopInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
          <instancesSet>
            <item>
              <instanceId>i-1234567890abcdef0</instanceId>
              <currentState>
                <code>64</code>
                <name>stopping</name>
              </currentState>
              <previousState>
                <code>16</code>
                <name>running</name>
              </previousState>
            </item>
          </instancesSet>
        </StopInstancesResponse>
        """

    static let startInstances = """
        <?xml version="1.0" encoding="UTF-8"?>
        <StartInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
          <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
          <instancesSet>
            <item>
              <instanceId>i-1234567890abcdef0</instanceId>
              <currentState>
                <code>0</code>
                <name>pending</name>
              </currentState>
              <previousState>
                <code>80</code>
                <name>stopped</name>
              </previousState>
            </item>
            <item>
              <instanceId>i-0598c7d356eba48d7</instanceId>
              <currentState>
                <code>16</code>
                <name>running</name>
              </currentState>
              <previousState>
                <code>16</code>
                <name>running</name>
              </previousState>
            </item>
          </instancesSet>
        </StartInstancesResponse>
        """

    static let describeInstanceStatus = """
        <DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>3be1508e-c444-4fef-89cc-0b1223c4f02fEXAMPLE</requestId>
            <instanceStatusSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <availabilityZone>us-east-1d</availabilityZone>
                    <instanceState>
                        <code>16</code>
                        <name>running</name>
                    </instanceState>
                    <systemStatus>
                        <status>impaired</status>
                        <details>
                            <item>
                                <name>reachability</name>
                                <status>failed</status>
                                <impairedSince>2026-11-26T17:00:00.000Z</impairedSince>
                            </item>
                        </details>
                    </systemStatus>
                    <instanceStatus>
                        <status>ok</status>
                        <details>
                            <item>
                                <name>reachability</name>
                                <status>passed</status>
                            </item>
                        </details>
                    </instanceStatus>
                    <eventsSet/>
                </item>
                <item>
                    <instanceId>i-0598c7d356eba48d7</instanceId>
                    <availabilityZone>us-east-1a</availabilityZone>
                    <instanceState>
                        <code>80</code>
                        <name>stopped</name>
                    </instanceState>
                    <systemStatus>
                        <status>not-applicable</status>
                    </systemStatus>
                    <instanceStatus>
                        <status>not-applicable</status>
                    </instanceStatus>
                </item>
            </instanceStatusSet>
            <nextToken>page-2</nextToken>
        </DescribeInstanceStatusResponse>
        """

    static let describeSpotPriceHistory = """
        <DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
            <spotPriceHistorySet>
                <item>
                    <instanceType>m3.medium</instanceType>
                    <productDescription>Linux/UNIX</productDescription>
                    <spotPrice>0.028700</spotPrice>
                    <timestamp>2026-11-26T17:53:19.000Z</timestamp>
                    <availabilityZone>us-east-1a</availabilityZone>
                </item>
                <item>
                    <instanceType>m3.medium</instanceType>
                    <productDescription>Windows</productDescription>
                    <spotPrice>0.065100</spotPrice>
                    <timestamp>2026-11-26T16:53:19Z</timestamp>
                    <availabilityZone>us-east-1b</availabilityZone>
                </item>
            </spotPriceHistorySet>
            <nextToken/>
        </DescribeSpotPriceHistoryResponse>
        """

    static let describeInstanceTypes = """
        <DescribeInstanceTypesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>d4904f0c-f2f7-4e3a-9b5d-example</requestId>
            <instanceTypeSet>
                <item>
                    <instanceType>m5.large</instanceType>
                    <currentGeneration>true</currentGeneration>
                    <hibernationSupported>true</hibernationSupported>
                    <vCpuInfo>
                        <defaultVCpus>2</defaultVCpus>
                    </vCpuInfo>
                    <memoryInfo>
                        <sizeInMiB>8192</sizeInMiB>
                    </memoryInfo>
                </item>
                <item>
                    <instanceType>t2.nano</instanceType>
                    <hibernationSupported>false</hibernationSupported>
                    <memoryInfo>
                        <sizeInMiB>512</sizeInMiB>
                    </memoryInfo>
                </item>
                <item>
                    <instanceType>x9.weird</instanceType>
                </item>
            </instanceTypeSet>
        </DescribeInstanceTypesResponse>
        """

    static let missingInstanceID = """
        <DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
            <requestId>r</requestId>
            <reservationSet>
                <item>
                    <instancesSet>
                        <item>
                            <instanceState><code>16</code><name>running</name></instanceState>
                        </item>
                    </instancesSet>
                </item>
            </reservationSet>
        </DescribeInstancesResponse>
        """

    static let errorDocument = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance IDs 'i-1a, i-2b' do not exist</Message></Error></Errors><RequestID>abc</RequestID></Response>"

    static func parse(_ text: String) throws -> XMLNode {
        try XMLDocumentParser.parse(Array(text.utf8))
    }

    // MARK: DescribeInstances

    @Test("DescribeInstances: two reservations, every field")
    func describeInstancesDecoded() throws {
        let root = try Self.parse(Self.describeInstances)
        #expect(root.string("requestId") == "8f7724cf-496f-496e-8fe3-example")
        #expect(EC2Decoding.nextToken(root) == "eyJ2IjoiMiIsImMiOiJ")
        let instances = try EC2Decoding.instances(root)
        try #require(instances.count == 3)

        let first = instances[0]
        #expect(first == EC2Instance(
            instanceID: "i-1234567890abcdef0", instanceType: "t2.micro", state: .running, stateReason: nil,
            stateTransitionReason: nil, launchTime: 1_795_715_599, availabilityZone: "eu-west-1c",
            privateIPAddress: "192.168.1.88",
            tags: [Tag(key: "Name", value: "Server_1"), Tag(key: "team", value: "a & b <ops>"), Tag(key: "empty", value: "")],
            hibernationConfigured: true, instanceLifecycle: nil, rootDeviceType: "ebs", spotInstanceRequestID: nil))
        #expect(first.name == "Server_1")
        #expect(first.tag("team") == "a & b <ops>")

        let spot = instances[1]
        #expect(spot.instanceID == "i-0fedcba9876543210")
        #expect(spot.state == .stopped)
        #expect(spot.stateReason == StateReason(code: "Client.UserInitiatedShutdown",
                                                message: "Client.UserInitiatedShutdown: User initiated shutdown"))
        #expect(spot.stateTransitionReason == "User initiated (2026-11-26 10:00:00 GMT)")
        #expect(spot.launchTime == 1_795_687_200) // 12:00+02:00 = 10:00Z
        #expect(spot.instanceLifecycle == "spot")
        #expect(spot.spotInstanceRequestID == "sir-abcd1234")
        #expect(spot.hibernationConfigured == false)
        #expect(spot.availabilityZone == "eu-west-1a")
        #expect(spot.privateIPAddress == nil)
        #expect(spot.tags.isEmpty)
        #expect(spot.name == nil)

        let masked = instances[2]
        #expect(masked.state.code == 16)
        #expect(masked.state == .running)
        #expect(masked.launchTime == nil)
        #expect(masked.rootDeviceType == nil)
    }

    @Test("the high byte of a state code is masked", arguments: [(272, 16), (80, 80), (0x1_0050, 80), (0, 0), (511, 255)])
    func stateCodeMasked(code: Int, expected: Int) {
        #expect(InstanceState(code: code, name: "x").code == expected)
    }

    // MARK: State changes

    @Test("StopInstances")
    func stopInstancesDecoded() throws {
        let changes = try EC2Decoding.stateChanges(try Self.parse(Self.stopInstances))
        #expect(changes == [InstanceStateChange(instanceID: "i-1234567890abcdef0", previousState: .running, currentState: .stopping)])
    }

    @Test("StartInstances")
    func startInstancesDecoded() throws {
        let changes = try EC2Decoding.stateChanges(try Self.parse(Self.startInstances))
        #expect(changes == [
            InstanceStateChange(instanceID: "i-1234567890abcdef0", previousState: .stopped, currentState: .pending),
            InstanceStateChange(instanceID: "i-0598c7d356eba48d7", previousState: .running, currentState: .running),
        ])
    }

    @Test("a state change without a readable state names the instance")
    func stateChangeWithoutState() throws {
        let text = "<StopInstancesResponse><instancesSet><item><instanceId>i-9</instanceId><currentState><code>x</code><name>stopping</name></currentState><previousState><code>16</code><name>running</name></previousState></item></instancesSet></StopInstancesResponse>"
        let error = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.stateChanges(try Self.parse(text)) }
        #expect(error?.what == "instance i-9 currentState has no readable state")
    }

    // MARK: Other operations

    @Test("DescribeInstanceStatus")
    func instanceStatusDecoded() throws {
        let root = try Self.parse(Self.describeInstanceStatus)
        let statuses = try EC2Decoding.statuses(root)
        #expect(statuses == [
            InstanceStatus(instanceID: "i-1234567890abcdef0", availabilityZone: "us-east-1d", state: .running,
                           systemStatus: "impaired", instanceStatus: "ok"),
            InstanceStatus(instanceID: "i-0598c7d356eba48d7", availabilityZone: "us-east-1a", state: .stopped,
                           systemStatus: "not-applicable", instanceStatus: "not-applicable"),
        ])
        #expect(EC2Decoding.nextToken(root) == "page-2")
    }

    @Test("DescribeSpotPriceHistory")
    func spotPricesDecoded() throws {
        let root = try Self.parse(Self.describeSpotPriceHistory)
        #expect(try EC2Decoding.spotPrices(root) == [
            SpotPrice(instanceType: "m3.medium", productDescription: "Linux/UNIX", availabilityZone: "us-east-1a",
                      price: "0.028700", timestamp: 1_795_715_599),
            SpotPrice(instanceType: "m3.medium", productDescription: "Windows", availabilityZone: "us-east-1b",
                      price: "0.065100", timestamp: 1_795_715_599 - 3600),
        ])
        #expect(EC2Decoding.nextToken(root) == nil)
    }

    @Test("a spot price with an unreadable timestamp is an error")
    func spotPriceBadTimestamp() throws {
        let text = Self.describeSpotPriceHistory.replacingOccurrences(of: "2026-11-26T16:53:19Z", with: "yesterday")
        let error = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.spotPrices(try Self.parse(text)) }
        #expect(error?.what.contains("spot price 2") == true)
        #expect(error?.what.contains("yesterday") == true)
    }

    @Test("DescribeInstanceTypes")
    func instanceTypesDecoded() throws {
        #expect(try EC2Decoding.instanceTypes(try Self.parse(Self.describeInstanceTypes)) == [
            InstanceTypeInfo(instanceType: "m5.large", hibernationSupported: true, memoryMiB: 8192),
            InstanceTypeInfo(instanceType: "t2.nano", hibernationSupported: false, memoryMiB: 512),
            InstanceTypeInfo(instanceType: "x9.weird", hibernationSupported: false, memoryMiB: nil),
        ])
    }

    // MARK: Errors

    @Test("the EC2 error document")
    func ec2ErrorDocument() throws {
        let response = HTTPResponse(status: 400, body: Array(Self.errorDocument.utf8))
        let error = try AWSQueryClient.serviceError(response).get()
        #expect(error == AWSServiceError(code: "InvalidInstanceID.NotFound", message: "The instance IDs 'i-1a, i-2b' do not exist",
                                         requestID: "abc", httpStatus: 400))
        #expect(error.description == "InvalidInstanceID.NotFound: The instance IDs 'i-1a, i-2b' do not exist (request id abc)")
        #expect(EC2ErrorCode.instanceIDs(in: error.message) == ["i-1a", "i-2b"])
    }

    @Test("the ErrorResponse form, and the request id from the header")
    func errorResponseForm() throws {
        let body = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>xyz</RequestId></ErrorResponse>"
        let error = try AWSQueryClient.serviceError(HTTPResponse(status: 400, body: Array(body.utf8))).get()
        #expect(error.code == "Throttling")
        #expect(error.message == "Rate exceeded")
        #expect(error.requestID == "xyz")

        let noID = "<Response><Errors><Error><Code>Unavailable</Code></Error></Errors></Response>"
        let fromHeader = try AWSQueryClient.serviceError(HTTPResponse(status: 503, headers: ["x-amzn-RequestId": "hdr"], body: Array(noID.utf8))).get()
        #expect(fromHeader.requestID == "hdr")
        #expect(fromHeader.message == "")
        #expect(fromHeader.description == "Unavailable:  (request id hdr)")
    }

    @Test("bodies that are no error document keep the body", arguments: [
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
        "",
        "Service Unavailable",
        "<Response><Errors><Error><Message>no code</Message></Error></Errors></Response>",
        "<Response><Errors><Error><Code></Code></Error></Errors></Response>",
        "<Response><Errors><Error><Code>Trunc",
    ])
    func unreadableErrors(body: String) {
        let response = HTTPResponse(status: 502, body: Array(body.utf8))
        switch AWSQueryClient.serviceError(response) {
        case .success(let error):
            Issue.record("read \(error) from \(body)")
        case .failure(let unreadable):
            #expect(unreadable.body == Array(body.utf8))
            #expect(unreadable.httpStatus == 502)
            #expect(!unreadable.reason.isEmpty)
        }
    }

    // MARK: Malformed documents

    @Test("malformed XML throws", arguments: [
        "<a><b></a>", "<a>", "not xml at all", "<?xml version=\"1.0\"?>", "<a attr=\"x></a>", "\u{0}",
        "<a>&undefined;</a>",
    ])
    func malformedXML(text: String) {
        #expect(throws: XMLParseError.self) { try Self.parse(text) }
    }

    @Test("content after the root element is rejected",
          arguments: ["<a></a><b></b>", "<a></a>junk", "<a/><a/>"])
    func contentAfterRoot(text: String) {
        #expect(throws: XMLParseError.self) { try Self.parse(text) }
    }

    @Test("an empty body throws an error that says so")
    func emptyBody() {
        let error = #expect(throws: XMLParseError.self) { try XMLDocumentParser.parse([]) }
        #expect(error?.reason == "empty document")
    }

    @Test("every truncation of every sample throws or decodes, never crashes", arguments: [
        describeInstances, stopInstances, startInstances, describeInstanceStatus, describeSpotPriceHistory,
        describeInstanceTypes, errorDocument,
    ])
    func truncatedBodies(sample: String) throws {
        let bytes = Array(sample.utf8)
        // The whole document parses.
        _ = try XMLDocumentParser.parse(bytes)
        var parsed = 0
        for length in 0..<bytes.count {
            let prefix = Array(bytes[..<length])
            guard let root = try? XMLDocumentParser.parse(prefix) else { continue }
            parsed += 1
            // Whatever parses must decode or throw, without crashing.
            _ = try? EC2Decoding.instances(root)
            _ = try? EC2Decoding.stateChanges(root)
            _ = try? EC2Decoding.statuses(root)
            _ = try? EC2Decoding.spotPrices(root)
            _ = try? EC2Decoding.instanceTypes(root)
            _ = AWSQueryClient.serviceError(HTTPResponse(status: 400, body: prefix))
        }
        // No proper prefix is a complete document: the root never closed.
        #expect(parsed == 0)
    }

    @Test("a DescribeInstances item without instanceId is an error naming it")
    func missingInstanceID() throws {
        let error = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.instances(try Self.parse(Self.missingInstanceID)) }
        #expect(error?.what == "reservation 1, instance 1 has no instanceId")
    }

    @Test("an instance without a readable state names the instance")
    func missingState() throws {
        let text = Self.describeInstances.replacingOccurrences(of: "<code>272</code>", with: "")
        let error = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.instances(try Self.parse(text)) }
        #expect(error?.what == "instance i-0aaaabbbbccccdddd has no readable state")
    }

    @Test("missing fields in other answers are errors naming them")
    func otherMissingFields() throws {
        let status = "<R><instanceStatusSet><item><availabilityZone>a</availabilityZone></item></instanceStatusSet></R>"
        #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.statuses(try Self.parse(status)) }
        let spot = "<R><spotPriceHistorySet><item><timestamp>2026-11-26T17:53:19Z</timestamp><instanceType>m5</instanceType></item></spotPriceHistorySet></R>"
        let error = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.spotPrices(try Self.parse(spot)) }
        #expect(error?.what == "spot price 1 has no spotPrice")
        let types = "<R><instanceTypeSet><item><instanceType></instanceType></item></instanceTypeSet></R>"
        let typeError = #expect(throws: EC2Decoding.Missing.self) { try EC2Decoding.instanceTypes(try Self.parse(types)) }
        #expect(typeError?.what == "instance type 1 has no instanceType")
    }

    @Test("an answer with no sets decodes to nothing")
    func emptySets() throws {
        let root = try Self.parse("<DescribeInstancesResponse><requestId>r</requestId><reservationSet/></DescribeInstancesResponse>")
        #expect(try EC2Decoding.instances(root).isEmpty)
        #expect(try EC2Decoding.stateChanges(root).isEmpty)
        #expect(EC2Decoding.nextToken(root) == nil)
    }

    @Test("XMLNode: namespace prefixes dropped, CDATA kept, layout whitespace trimmed")
    func xmlNodeBasics() throws {
        let root = try Self.parse("<ns:Root xmlns:ns=\"urn:x\">\n  <ns:a>  text  </ns:a>\n  <b><![CDATA[<raw> & ]]></b>\n  <list><item>1</item><other/><item>2</item></list>\n</ns:Root>")
        #expect(root.name == "Root")
        #expect(root.string("a") == "  text  ")
        #expect(root.string("b") == "<raw> & ")
        #expect(root.items("list").map(\.text) == ["1", "2"])
        #expect(root["list", "other"]?.text == "")
        #expect(root["list", "missing"] == nil)
        #expect(root.items("missing").isEmpty)
        #expect(root.text == "")
    }

    // MARK: Instance ids in messages

    @Test("instance ids named in error messages", arguments: [
        ("The instance IDs 'i-1a, i-2b' do not exist", ["i-1a", "i-2b"]),
        ("The instance ID 'i-0123456789abcdef0' does not exist", ["i-0123456789abcdef0"]),
        ("Invalid id: \"i-abc\" (expecting \"i-...\")", ["i-abc"]),
        ("i-1 and i-1 again, then i-2.", ["i-1", "i-2"]),
        ("hi-there multi-instance i-", []),
        ("I-UPPER is not an id; xi-1 neither", []),
        ("", []),
        ("i-x", ["i-x"]),
        ("ids:i-1,i-2;i-3", ["i-1", "i-2", "i-3"]),
    ])
    func instanceIDsInMessage(message: String, expected: [String]) {
        #expect(EC2ErrorCode.instanceIDs(in: message) == expected)
    }
}
