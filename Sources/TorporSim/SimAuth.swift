import Foundation
import TorporSigV4

/// Checks an EC2 request's SigV4 signature the way EC2 does: the access key
/// must be one of the fleet file's, the signature must match what our own
/// signer computes over the signed headers, and X-Amz-Date must be within
/// five minutes of the wall clock (real time, not simulated: clients sign
/// with real time).
struct SimAuth: Sendable {
    let region: String
    let secret: @Sendable (String) -> String?
    let wallNow: @Sendable () -> Double

    static let maxSkew: Double = 300

    func verify(method: String, url: RequestURL, headers: HTTPHeaders, body: [UInt8]) -> SimAPIError? {
        guard let authorization = headers["Authorization"] else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials: the request has no Authorization header.", status: 401)
        }
        guard let parsed = Self.parse(authorization) else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials: the Authorization header is malformed.", status: 401)
        }
        guard let secret = secret(parsed.accessKeyID) else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials", status: 401)
        }
        guard let dateText = headers["X-Amz-Date"], let date = SigningDate(amzDate: dateText) else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials: X-Amz-Date is missing or malformed.", status: 401)
        }
        if abs(Double(date.secondsSinceEpoch) - wallNow()) > Self.maxSkew {
            return SimAPIError("RequestExpired", "Request has expired. Timestamp date is \(dateText).", status: 400)
        }
        guard parsed.scope.count == 4, parsed.scope[0] == date.dateStamp, parsed.scope[3] == "aws4_request" else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials: the credential scope does not match X-Amz-Date.", status: 401)
        }
        guard parsed.scope[1] == region else {
            return SimAPIError("AuthFailure", "Credential should be scoped to a valid region, not '\(parsed.scope[1])'. This endpoint serves '\(region)'.", status: 401)
        }
        // Only the headers the client signed, in the order it sent them.
        let signedNames = Set(parsed.signedHeaders)
        var signedHeaders = HTTPHeaders()
        for field in headers where signedNames.contains(field.name.lowercased()) {
            signedHeaders.add(name: field.name, value: field.value)
        }
        let signer = SigV4Signer(region: parsed.scope[1], service: parsed.scope[2])
        let expected = signer.sign(
            SigV4Request(method: method, url: url, headers: signedHeaders, payload: .bytes(body)),
            credentials: AWSCredentials(accessKeyID: parsed.accessKeyID, secretAccessKey: secret), date: date)
        guard Self.constantTimeEqual(expected.signature, parsed.signature),
              expected.authorization.contains("SignedHeaders=\(parsed.signedHeaders.joined(separator: ";")),")
        else {
            return SimAPIError("AuthFailure", "AWS was not able to validate the provided access credentials", status: 401)
        }
        return nil
    }

    struct Parsed {
        let accessKeyID: String
        let scope: [String]
        let signedHeaders: [String]
        let signature: String
    }

    static func parse(_ header: String) -> Parsed? {
        guard header.hasPrefix("AWS4-HMAC-SHA256 ") else { return nil }
        var fields: [String: String] = [:]
        for part in header.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "=") else { return nil }
            fields[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
        }
        guard let credential = fields["Credential"], let signed = fields["SignedHeaders"], let signature = fields["Signature"] else { return nil }
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5 else { return nil }
        return Parsed(accessKeyID: parts[0], scope: Array(parts[1...]), signedHeaders: signed.split(separator: ";").map(String.init),
                      signature: signature)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space.
enum FormDecoding {
    static func decode(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = unescape(parts[0])
            let value = parts.count > 1 ? unescape(parts[1]) : ""
            result[name] = value
        }
        return result
    }

    static func unescape(_ text: Substring) -> String {
        (String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding) ?? String(text)
    }
}
