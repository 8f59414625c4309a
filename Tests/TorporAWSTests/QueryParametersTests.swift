import Testing
@testable import TorporAWS

@Suite("QueryParameters")
struct QueryParametersTests {
    static func body(_ parameters: QueryParameters) -> String {
        String(decoding: parameters.formEncoded, as: UTF8.self)
    }

    @Test("Action and Version come first")
    func actionAndVersion() {
        let parameters = QueryParameters(action: "DescribeInstances", version: "2016-11-15")
        #expect(Self.body(parameters) == "Action=DescribeInstances&Version=2016-11-15")
        #expect(parameters["Action"] == "DescribeInstances")
        #expect(parameters["Version"] == "2016-11-15")
        #expect(parameters["Missing"] == nil)
    }

    @Test("form encoding of values", arguments: [
        ("a b", "a%20b"), ("~", "~"), ("-._", "-._"), ("ü", "%C3%BC"), ("日本", "%E6%97%A5%E6%9C%AC"), ("+", "%2B"),
        ("*", "%2A"), ("a=b&c", "a%3Db%26c"), ("/:?#[]@", "%2F%3A%3F%23%5B%5D%40"), ("%20", "%2520"), ("\n\t", "%0A%09"),
        ("AZaz09", "AZaz09"), ("", ""), ("'!()", "%27%21%28%29"), ("\u{7F}", "%7F"),
    ])
    func formEncoding(value: String, encoded: String) {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.set("Key", value)
        #expect(Self.body(parameters) == "Action=A&Version=V&Key=\(encoded)")
    }

    @Test("names are encoded too")
    func namesEncoded() {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.set("Tag.1.Key name", "v")
        #expect(Self.body(parameters) == "Action=A&Version=V&Tag.1.Key%20name=v")
    }

    @Test("Bool and Int values")
    func scalarValues() {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.set("DryRun", true)
        parameters.set("Force", false)
        parameters.set("MaxResults", 1000)
        parameters.set("Negative", -5)
        #expect(Self.body(parameters) == "Action=A&Version=V&DryRun=true&Force=false&MaxResults=1000&Negative=-5")
    }

    @Test("setList numbers from 1 and keeps the order")
    func setList() {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.setList("InstanceId", ["i-b", "i-a", "i c"])
        parameters.setList("Empty", [])
        #expect(parameters.pairs.map(\.0) == ["Action", "Version", "InstanceId.1", "InstanceId.2", "InstanceId.3"])
        #expect(Self.body(parameters) == "Action=A&Version=V&InstanceId.1=i-b&InstanceId.2=i-a&InstanceId.3=i%20c")
    }

    @Test("setFilters numbers filters and their values from 1")
    func setFilters() {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.setFilters([
            (name: "instance-state-name", values: ["running", "stopped"]),
            (name: "tag:Name", values: ["web server"]),
            (name: "no-values", values: []),
        ])
        #expect(parameters.pairs.map { "\($0.0)=\($0.1)" } == [
            "Action=A", "Version=V",
            "Filter.1.Name=instance-state-name", "Filter.1.Value.1=running", "Filter.1.Value.2=stopped",
            "Filter.2.Name=tag:Name", "Filter.2.Value.1=web server",
            "Filter.3.Name=no-values",
        ])
        #expect(Self.body(parameters).contains("Filter.2.Name=tag%3AName&Filter.2.Value.1=web%20server"))
    }

    @Test("equality compares names, values and order")
    func equality() {
        var a = QueryParameters(action: "A", version: "V")
        var b = QueryParameters(action: "A", version: "V")
        #expect(a == b)
        a.set("x", "1"); a.set("y", "2")
        b.set("y", "2"); b.set("x", "1")
        #expect(a != b)
        var c = QueryParameters(action: "A", version: "V")
        c.set("x", "1"); c.set("y", "2")
        #expect(a == c)
        #expect(QueryParameters(action: "A", version: "V") != QueryParameters(action: "B", version: "V"))
    }

    @Test("a repeated name: the subscript gives the first")
    func repeatedName() {
        var parameters = QueryParameters(action: "A", version: "V")
        parameters.set("k", "first")
        parameters.set("k", "second")
        #expect(parameters["k"] == "first")
        #expect(Self.body(parameters) == "Action=A&Version=V&k=first&k=second")
    }
}
