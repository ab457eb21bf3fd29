//! Address networks, ordered access-control lists and trunk source sets (IPv4 and
//! IPv6).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation; a bare address is a full-length prefix. IPv4-mapped
/// IPv6 addresses match IPv4 networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A string that is not an address or a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or a CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)")]
pub struct CidrError(pub String);

impl Cidr {
    pub fn new(address: IpAddr, prefix: u8) -> Option<Cidr> {
        let address = canonical(address);
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        Some(Cidr {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// The network of exactly one address.
    pub fn host(address: IpAddr) -> Cidr {
        let address = canonical(address);
        Cidr {
            network: address,
            prefix: if address.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        match prefix {
            None => Ok(Cidr::host(address)),
            Some(prefix) => {
                let prefix: u8 = prefix.parse().map_err(|_| bad())?;
                // An IPv4-mapped IPv6 network is written with an IPv6 prefix length.
                let prefix = match address {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                        prefix.checked_sub(96).ok_or_else(bad)?
                    }
                    _ => prefix,
                };
                Cidr::new(address, prefix).ok_or_else(bad)
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(v4) & bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(v6) & bits))
        }
    }
}

/// What an ACL rule (or an ACL's default) does with a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AclAction {
    Allow,
    Deny,
}

/// One rule: a network and what to do with sources inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclRule {
    pub action: AclAction,
    pub network: Cidr,
}

impl AclRule {
    pub fn allow(network: Cidr) -> AclRule {
        AclRule {
            action: AclAction::Allow,
            network,
        }
    }

    pub fn deny(network: Cidr) -> AclRule {
        AclRule {
            action: AclAction::Deny,
            network,
        }
    }
}

/// An access-control list: rules tried in order, the first whose network holds the
/// source decides; a source no rule holds gets the default action.
///
/// The configuration file's `acl = { allow = [...], deny = [...] }` compiles into one
/// ([`Acl::from_lists`]): its deny rules first, then its allow rules, and a default of
/// deny when it has an allow list (allow otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    pub rules: Vec<AclRule>,
    pub default: AclAction,
}

impl Default for Acl {
    fn default() -> Acl {
        Acl::open()
    }
}

impl Acl {
    /// Admits everything.
    pub fn open() -> Acl {
        Acl {
            rules: Vec::new(),
            default: AclAction::Allow,
        }
    }

    /// The ACL of an allow list and a deny list (the configuration file's form).
    pub fn from_lists(allow: &[Cidr], deny: &[Cidr]) -> Acl {
        let rules = deny
            .iter()
            .map(|net| AclRule::deny(*net))
            .chain(allow.iter().map(|net| AclRule::allow(*net)))
            .collect();
        Acl {
            rules,
            default: if allow.is_empty() {
                AclAction::Allow
            } else {
                AclAction::Deny
            },
        }
    }

    /// The action of the first rule that holds `address`, if any does.
    pub fn rule_for(&self, address: IpAddr) -> Option<AclAction> {
        self.rules
            .iter()
            .find(|rule| rule.network.contains(address))
            .map(|rule| rule.action)
    }

    /// What the ACL does with `address`: its first matching rule, else the default.
    pub fn verdict(&self, address: IpAddr) -> AclAction {
        self.rule_for(address).unwrap_or(self.default)
    }

    pub fn admits(&self, address: IpAddr) -> bool {
        self.verdict(address) == AclAction::Allow
    }

    /// Whether a rule allows `address` by name (its first matching rule is an allow
    /// rule; the default does not count).
    pub fn lists(&self, address: IpAddr) -> bool {
        self.rule_for(address) == Some(AclAction::Allow)
    }

    /// Whether the ACL admits everything (no rule, default allow).
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && self.default == AclAction::Allow
    }
}

/// Whether every ACL of `acls` admits `address` (a listener or trunk with several ACLs,
/// from the configuration file and the admin API, must pass all of them).
pub fn all_admit(acls: &[Acl], address: IpAddr) -> bool {
    acls.iter().all(|acl| acl.admits(address))
}

/// Where one trunk's traffic comes from: its targets' addresses, and the networks its
/// ACLs allow by name, less what any of its ACLs refuses.
///
/// A source is the trunk's when (1) it is a target address or an allow rule of one of
/// the trunk's ACLs names it, and (2) every ACL of the trunk admits it, where a target
/// address that no rule of an ACL holds counts as allowed by that ACL (its default does
/// not apply to the trunk's own targets). So a file ACL's `deny` list takes networks
/// away from the trunk, its `allow` list adds some, and an ACL object with
/// `default_action = deny` limits the trunk to its targets and the networks it allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrunkSources {
    targets: Vec<Cidr>,
    acls: Vec<Acl>,
}

impl TrunkSources {
    pub fn new(targets: Vec<Cidr>, acls: Vec<Acl>) -> TrunkSources {
        TrunkSources { targets, acls }
    }

    /// Whether traffic from `address` is the trunk's.
    pub fn holds(&self, address: IpAddr) -> bool {
        let target = self.targets.iter().any(|net| net.contains(address));
        let named = target || self.acls.iter().any(|acl| acl.lists(address));
        named
            && self.acls.iter().all(|acl| match acl.rule_for(address) {
                Some(action) => action == AclAction::Allow,
                None => target || acl.default == AclAction::Allow,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn networks_match_their_addresses() {
        let net: Cidr = "192.0.2.77/24".parse().unwrap();
        assert_eq!(net.to_string(), "192.0.2.0/24");
        assert!(net.contains("192.0.2.1".parse().unwrap()));
        assert!(net.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        assert!("192.0.2.1/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::1"
        );
    }

    #[test]
    fn the_file_form_compiles_to_deny_rules_then_allow_rules() {
        let acl = Acl::from_lists(&[net("10.0.0.0/8")], &[net("10.1.0.0/16")]);
        assert_eq!(
            acl.rules,
            vec![
                AclRule::deny(net("10.1.0.0/16")),
                AclRule::allow(net("10.0.0.0/8"))
            ]
        );
        assert_eq!(acl.default, AclAction::Deny);
        assert!(acl.admits(ip("10.2.3.4")));
        assert!(!acl.admits(ip("10.1.3.4")));
        assert!(!acl.admits(ip("192.0.2.1")));
        assert!(acl.lists(ip("10.2.3.4")));
        assert!(!acl.lists(ip("192.0.2.1")));
        // A deny list alone refuses only what it names.
        let deny_only = Acl::from_lists(&[], &[net("2001:db8:bad::/48")]);
        assert_eq!(deny_only.default, AclAction::Allow);
        assert!(!deny_only.admits(ip("2001:db8:bad::1")));
        assert!(deny_only.admits(ip("2001:db8:900d::1")));
        assert!(deny_only.admits(ip("192.0.2.1")));
        assert!(Acl::open().admits(ip("192.0.2.1")));
        assert!(Acl::from_lists(&[], &[]).is_open());
    }

    #[test]
    fn the_first_matching_rule_decides_in_both_families() {
        let acl = Acl {
            rules: vec![
                AclRule::allow(net("198.51.100.7")),
                AclRule::deny(net("198.51.100.0/24")),
                AclRule::deny(net("2001:db8::1")),
                AclRule::allow(net("2001:db8::/32")),
            ],
            default: AclAction::Deny,
        };
        assert_eq!(acl.verdict(ip("198.51.100.7")), AclAction::Allow);
        assert_eq!(acl.verdict(ip("::ffff:198.51.100.7")), AclAction::Allow);
        assert_eq!(acl.verdict(ip("198.51.100.8")), AclAction::Deny);
        assert_eq!(acl.verdict(ip("2001:db8::1")), AclAction::Deny);
        assert_eq!(acl.verdict(ip("2001:db8::2")), AclAction::Allow);
        assert_eq!(acl.verdict(ip("2001:db9::2")), AclAction::Deny);
        assert_eq!(acl.verdict(ip("203.0.113.1")), AclAction::Deny);
        let open_default = Acl {
            default: AclAction::Allow,
            ..acl.clone()
        };
        assert_eq!(open_default.verdict(ip("203.0.113.1")), AclAction::Allow);
        // Every ACL must admit.
        assert!(!all_admit(&[open_default.clone(), acl], ip("203.0.113.1")));
        assert!(all_admit(&[open_default], ip("203.0.113.1")));
        assert!(all_admit(&[], ip("203.0.113.1")));
    }

    #[test]
    fn a_trunk_holds_its_targets_and_what_its_acls_allow_less_what_they_deny() {
        let file = Acl::from_lists(&[net("10.0.0.0/8")], &[net("10.9.0.0/16")]);
        let trunk = TrunkSources::new(vec![net("192.0.2.10")], vec![file.clone()]);
        assert!(
            trunk.holds(ip("192.0.2.10")),
            "a target, though outside allow"
        );
        assert!(trunk.holds(ip("10.1.1.1")), "allowed by name");
        assert!(!trunk.holds(ip("10.9.1.1")), "denied");
        assert!(
            !trunk.holds(ip("203.0.113.1")),
            "neither target nor allowed"
        );
        // No ACL: its targets only.
        let bare = TrunkSources::new(vec![net("2001:db8::10")], Vec::new());
        assert!(bare.holds(ip("2001:db8::10")));
        assert!(!bare.holds(ip("2001:db8::11")));
        // An ACL object that denies a target by name takes it away; a default-deny one
        // with no rule leaves the targets; a default-allow one adds nothing.
        let deny_target = Acl {
            rules: vec![AclRule::deny(net("192.0.2.10"))],
            default: AclAction::Allow,
        };
        let closed = Acl {
            rules: Vec::new(),
            default: AclAction::Deny,
        };
        let both = TrunkSources::new(vec![net("192.0.2.10")], vec![file.clone(), deny_target]);
        assert!(!both.holds(ip("192.0.2.10")));
        assert!(both.holds(ip("10.1.1.1")));
        let limited = TrunkSources::new(vec![net("192.0.2.10")], vec![file, closed]);
        assert!(limited.holds(ip("192.0.2.10")));
        assert!(!limited.holds(ip("10.1.1.1")), "the second ACL refuses it");
        let open = TrunkSources::new(vec![net("192.0.2.10")], vec![Acl::open()]);
        assert!(!open.holds(ip("198.51.100.1")));
    }

    fn net(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }
}
