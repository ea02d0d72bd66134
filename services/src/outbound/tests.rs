use std::net::IpAddr;

use url::Url;

use super::OutboundPolicy;

fn url(text: &str) -> Url {
    Url::parse(text).expect("url")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

#[test]
fn by_default_metadata_loopback_and_local_remotes_are_refused_and_the_rest_allowed() {
    let policy = OutboundPolicy::default();
    for refused in [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "http://[::1]:8080/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:9090/",
        "http://localhost:9090/",
        "http://api.localhost/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[fd00:ec2::254]/",
    ] {
        let refusal = policy.check_url(&url(refused)).expect_err(refused);
        assert!(
            refusal.to_string().contains("AUTOSCALER_OUTBOUND_ALLOW"),
            "{refusal}"
        );
    }
    for allowed in [
        "https://prometheus.monitoring.svc:9090/",
        "http://10.0.3.4:8081/",
        "https://api.github.com/",
    ] {
        policy.check_url(&url(allowed)).expect(allowed);
    }
    assert!(policy.check_url(&url("ftp://example.com/")).is_err());
    for local in [
        "file:///srv/git/repo.git",
        "/srv/git/repo.git",
        "./repo.git",
    ] {
        assert!(policy.check_git_remote(local).is_err(), "{local}");
    }
    policy
        .check_git_remote("git@github.com:team/deploy.git")
        .expect("scp-like");
    assert!(policy.check_git_remote("git@127.0.0.1:deploy.git").is_err());
    assert!(
        policy
            .check_git_remote("ssh://git@[::1]/deploy.git")
            .is_err()
    );
}

#[test]
fn an_allow_list_allows_what_it_names_and_only_that() {
    let policy: OutboundPolicy = "10.0.0.0/8, git.example.com, *.svc.cluster.local"
        .parse()
        .expect("list");
    policy.check_url(&url("http://10.1.2.3/")).expect("network");
    policy
        .check_url(&url("http://prometheus.monitoring.svc.cluster.local:9090/"))
        .expect("domain");
    policy
        .check_git_remote("https://git.example.com/team/deploy.git")
        .expect("host");
    assert!(policy.check_ip(ip("192.168.1.1")).is_err());
    // A name the list does not vouch for may still resolve into an allowed network: checked on connect.
    policy.check_name("prometheus.internal").expect("deferred");
    assert!(
        policy
            .check_resolved("prometheus.internal", ip("192.168.1.1"))
            .is_err()
    );
    policy
        .check_resolved("prometheus.internal", ip("10.9.9.9"))
        .expect("in the network");
    // A vouched name may resolve anywhere.
    policy
        .check_resolved("git.example.com", ip("127.0.0.1"))
        .expect("vouched");

    let names_only: OutboundPolicy = "git.example.com".parse().expect("list");
    assert!(names_only.check_name("other.example.com").is_err());
}

#[test]
fn loopback_and_local_remotes_only_when_named() {
    let policy: OutboundPolicy = "*,127.0.0.0/8,::1,file".parse().expect("list");
    policy
        .check_url(&url("http://127.0.0.1:9090/"))
        .expect("loopback");
    policy
        .check_url(&url("http://[::1]:9090/"))
        .expect("loopback v6");
    policy.check_git_remote("/tmp/repo.git").expect("file");
    // Naming loopback does not open the metadata address.
    assert!(policy.check_url(&url("http://169.254.169.254/")).is_err());
    // Nor does `*` vouch for a name that resolves to a refused address.
    assert!(
        OutboundPolicy::default()
            .check_resolved("innocent.example.com", ip("169.254.169.254"))
            .is_err()
    );
}

#[test]
fn malformed_entries_are_refused_naming_the_entry() {
    for bad in ["10.0.0.0/33", "http://x", "exa mple.com", "*."] {
        let error = bad.parse::<OutboundPolicy>().expect_err(bad);
        assert!(error.to_string().contains(bad), "{error}");
    }
    assert_eq!(
        "".parse::<OutboundPolicy>()
            .map(|p| p.check_name("example.com").is_err()),
        Ok(true),
        "an empty list allows nothing"
    );
}
