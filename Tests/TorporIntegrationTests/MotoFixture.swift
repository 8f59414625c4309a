import Foundation
import Testing
import TorporAWS
import TorporEC2
import TorporSigV4

/// moto's EC2 with IAM authentication on, shared by the suites of this
/// process: each test works on instances it launched, tagged with its own
/// marker, so tests never see each other's instances.
final class MotoFixture: Sendable {
    let server: HelperServer
    let endpoint: String
    let accessKeyID: String
    let secretAccessKey: String

    static let shared: Result<MotoFixture, any Error> = Result { try MotoFixture() }

    /// The shared server, started on first use off the cooperative pool.
    static func get() async throws -> MotoFixture { try await offPool { try shared.get() } }

    private init() throws {
        server = try HelperServer(script: "moto_iam_server.py", arguments: ["--lifetime", "900"])
        guard let object = try JSONSerialization.jsonObject(with: Data(server.firstLine.utf8)) as? [String: String],
              let endpoint = object["endpoint"], let key = object["accessKeyId"], let secret = object["secretAccessKey"]
        else { throw TestProcessError.noOutput("moto fixture printed '\(server.firstLine)'") }
        self.endpoint = endpoint
        accessKeyID = key
        secretAccessKey = secret
    }

    var credentials: AWSCredentials { AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey) }

    func client(secret: String? = nil, maxAttempts: Int = 3) throws -> EC2Client {
        let credentials = AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secret ?? secretAccessKey)
        let location = ServiceLocation(region: "us-east-1", endpoint: try RequestURL(parsing: endpoint), endpointSource: "test")
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                 credentials: StaticCredentialProvider(credentials), transport: CurlTransport(),
                                 retryPolicy: RetryPolicy(maxAttempts: maxAttempts, baseDelay: .milliseconds(10)))
        return EC2Client(aws: aws)
    }

    /// Environment for running the `torpor` binary against this moto.
    var cliEnvironment: [String: String] {
        isolatedEnvironment([
            "AWS_ACCESS_KEY_ID": accessKeyID, "AWS_SECRET_ACCESS_KEY": secretAccessKey,
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_EC2": endpoint,
        ])
    }

    /// Launches instances through boto3 (Torpor has no RunInstances) and
    /// returns their ids: `reservations` calls of `count` instances each.
    /// Every instance gets the tag `Marker=<marker>`.
    func launch(count: Int, marker: String, hibernation: Bool = true, reservations: Int = 1) async throws -> [String] {
        let script = """
        import boto3, json, sys
        ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                           aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
        ids = []
        for _ in range(int(sys.argv[7])):
            r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=int(sys.argv[4]), MaxCount=int(sys.argv[4]),
                                  InstanceType="m5.large", HibernationOptions={"Configured": sys.argv[6] == "1"},
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "Marker", "Value": sys.argv[5]}]}])
            ids += [i["InstanceId"] for i in r["Instances"]]
        print(json.dumps(ids))
        """
        let result = try await runProcess("/usr/bin/env", ["python3", "-c", script, endpoint, accessKeyID, secretAccessKey,
                                                     String(count), marker, hibernation ? "1" : "0", String(reservations)],
                                    environment: ProcessInfo.processInfo.environment)
        guard result.status == 0, let ids = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String] else {
            throw TestProcessError.noOutput("run_instances failed: \(result.stderr)")
        }
        return ids
    }
}

func uniqueMarker(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }
