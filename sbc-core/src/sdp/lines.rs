//! [`Lines`]: the ordered lines of the session level or of one media section, with
//! typed access to the attributes the SBC rewrites.

use bytes::Bytes;

use super::attributes::{Direction, Fingerprint, Rtcp, Setup, TypedAttribute};
use super::candidate::Candidate;
use super::crypto::Crypto;
use super::error::AttributeError;
use super::model::{Attribute, Connection, Line};

/// The attributes that belong to ICE (RFC 8839 §5) and are removed together.
const ICE_ATTRIBUTES: [&str; 9] = [
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-lite",
    "ice-options",
    "ice-mismatch",
    "ice-pacing",
];

/// The lines of one level, in the order received. Typed views are decoded on demand from
/// the raw attributes (most attributes pass through an SBC untouched, so they are never
/// decoded); setters replace the attribute lines in place, keeping the others' order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lines(Vec<Line>);

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Line> {
        self.0.iter()
    }

    /// Mutable access to every line. Keep the invariant of [`Line::Other`]: never put a
    /// `v=`, `o=`, `s=`, `m=` or `c=` line there.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Line> {
        self.0.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, line: Line) {
        self.0.push(line);
    }

    /// Inserts a line at `index` (clamped to the end).
    pub fn insert(&mut self, index: usize, line: Line) {
        self.0.insert(index.min(self.0.len()), line);
    }

    pub fn as_slice(&self) -> &[Line] {
        &self.0
    }

    pub fn retain(&mut self, keep: impl FnMut(&Line) -> bool) {
        self.0.retain(keep);
    }

    // ---- attributes by name ----

    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.0.iter().filter_map(|line| match line {
            Line::Attribute(a) => Some(a),
            _ => None,
        })
    }

    /// Every attribute named `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes().filter(move |a| a.is(name))
    }

    /// The first attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes().find(|a| a.is(name))
    }

    /// The value of the first attribute named `name` that has one.
    pub fn attribute_value(&self, name: &str) -> Option<&Bytes> {
        self.attributes()
            .filter(|a| a.is(name))
            .find_map(|a| a.value.as_ref())
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// Appends an attribute after every other line.
    pub fn push_attribute(&mut self, attribute: Attribute) {
        self.0.push(Line::Attribute(attribute));
    }

    /// Removes every attribute named `name`; returns how many there were.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0
            .retain(|line| !matches!(line, Line::Attribute(a) if a.is(name)));
        before - self.0.len()
    }

    /// Replaces every attribute named `name` by `attribute`, at the place of the first one
    /// (appended when there was none).
    pub fn set_attribute(&mut self, attribute: Attribute) {
        let name = attribute.name.clone();
        self.replace_attributes(&name, [attribute]);
    }

    /// Replaces every attribute named `name` by `new` (which may be empty), at the place
    /// of the first one (appended when there was none).
    pub fn replace_attributes(&mut self, name: &str, new: impl IntoIterator<Item = Attribute>) {
        self.replace_where(|a| a.is(name), new);
    }

    fn replace_where(
        &mut self,
        matches: impl Fn(&Attribute) -> bool,
        new: impl IntoIterator<Item = Attribute>,
    ) {
        let is_match = |line: &Line| matches!(line, Line::Attribute(a) if matches(a));
        let at = self.0.iter().position(is_match).unwrap_or(self.0.len());
        self.0.retain(|line| !is_match(line));
        let at = at.min(self.0.len());
        self.0.splice(at..at, new.into_iter().map(Line::Attribute));
    }

    // ---- typed attributes ----

    /// The first attribute `T::NAME`, decoded.
    pub fn get<T: TypedAttribute>(&self) -> Option<Result<T, AttributeError>> {
        self.attribute(T::NAME).map(T::from_attribute)
    }

    /// Every attribute `T::NAME`, decoded, in order.
    pub fn get_all<T: TypedAttribute>(&self) -> impl Iterator<Item = Result<T, AttributeError>> {
        self.attributes_named(T::NAME).map(T::from_attribute)
    }

    /// Replaces every attribute `T::NAME` by `value` (or removes them when `None`).
    pub fn set<T: TypedAttribute>(&mut self, value: Option<&T>) {
        self.replace_attributes(T::NAME, value.map(T::to_attribute));
    }

    /// Replaces every attribute `T::NAME` by `values`, in order, at the place of the first.
    pub fn set_all<T: TypedAttribute>(&mut self, values: &[T]) {
        self.replace_attributes(T::NAME, values.iter().map(T::to_attribute));
    }

    // ---- c= ----

    /// The first `c=` line.
    pub fn connection(&self) -> Option<&Connection> {
        self.connections().next()
    }

    pub fn connection_mut(&mut self) -> Option<&mut Connection> {
        self.0.iter_mut().find_map(|line| match line {
            Line::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// Every `c=` line (a media section may have several for layered multicast).
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.0.iter().filter_map(|line| match line {
            Line::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// Replaces every `c=` line by `connection` at the place of the first, or inserts it
    /// where RFC 8866 §5 orders it (before `b=`, `t=`, `k=`, `a=` …); `None` removes them.
    pub fn set_connection(&mut self, connection: Option<Connection>) {
        let at = self
            .0
            .iter()
            .position(|line| matches!(line, Line::Connection(_)))
            .unwrap_or_else(|| {
                self.0
                    .iter()
                    .position(|line| order_rank(line.kind()) > order_rank(Some(b'c')))
                    .unwrap_or(self.0.len())
            });
        self.0.retain(|line| !matches!(line, Line::Connection(_)));
        let at = at.min(self.0.len());
        if let Some(connection) = connection {
            self.0.insert(at, Line::Connection(connection));
        }
    }

    // ---- direction, rtcp, rtcp-mux ----

    /// The first direction attribute (`sendrecv`, `sendonly`, `recvonly`, `inactive`).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .find_map(|a| Direction::from_name(&a.name))
    }

    /// Replaces every direction attribute by `direction` (or removes them when `None`).
    pub fn set_direction(&mut self, direction: Option<Direction>) {
        self.replace_where(
            |a| Direction::from_name(&a.name).is_some(),
            direction.map(|d| Attribute::flag(d.as_str())),
        );
    }

    /// `a=rtcp:` (RFC 3605).
    pub fn rtcp(&self) -> Option<Result<Rtcp, AttributeError>> {
        self.get()
    }

    pub fn set_rtcp(&mut self, rtcp: Option<&Rtcp>) {
        self.set(rtcp);
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    pub fn set_rtcp_mux(&mut self, on: bool) {
        self.set_flag("rtcp-mux", on);
    }

    /// Adds a property attribute unless present (`on`), or removes it.
    pub fn set_flag(&mut self, name: &str, on: bool) {
        if !on {
            self.remove_attributes(name);
        } else if !self.has_attribute(name) {
            self.push_attribute(Attribute::flag(name));
        }
    }

    // ---- SDES and DTLS-SRTP ----

    /// Every `a=crypto` (RFC 4568), decoded.
    pub fn crypto(&self) -> impl Iterator<Item = Result<Crypto, AttributeError>> {
        self.get_all()
    }

    pub fn set_crypto(&mut self, crypto: &[Crypto]) {
        self.set_all(crypto);
    }

    /// Every `a=fingerprint` (RFC 8122), decoded.
    pub fn fingerprints(&self) -> impl Iterator<Item = Result<Fingerprint, AttributeError>> {
        self.get_all()
    }

    pub fn set_fingerprints(&mut self, fingerprints: &[Fingerprint]) {
        self.set_all(fingerprints);
    }

    /// `a=setup` (RFC 4145).
    pub fn setup(&self) -> Option<Result<Setup, AttributeError>> {
        self.get()
    }

    pub fn set_setup(&mut self, setup: Option<Setup>) {
        self.set(setup.as_ref());
    }

    // ---- ICE ----

    pub fn ice_ufrag(&self) -> Option<&Bytes> {
        self.attribute_value("ice-ufrag")
    }

    pub fn ice_pwd(&self) -> Option<&Bytes> {
        self.attribute_value("ice-pwd")
    }

    /// Sets `a=ice-ufrag` and `a=ice-pwd`, replacing any present.
    pub fn set_ice_credentials(&mut self, ufrag: impl Into<Bytes>, pwd: impl Into<Bytes>) {
        self.set_attribute(Attribute::new("ice-ufrag", ufrag));
        self.set_attribute(Attribute::new("ice-pwd", pwd));
    }

    /// Whether `a=ice-lite` is present (a session-level attribute).
    pub fn ice_lite(&self) -> bool {
        self.has_attribute("ice-lite")
    }

    pub fn set_ice_lite(&mut self, on: bool) {
        self.set_flag("ice-lite", on);
    }

    /// Every `a=candidate`, decoded.
    pub fn candidates(&self) -> impl Iterator<Item = Result<Candidate, AttributeError>> {
        self.get_all()
    }

    pub fn set_candidates(&mut self, candidates: &[Candidate]) {
        self.set_all(candidates);
    }

    /// Removes every ICE attribute (candidates, credentials, options, `ice-lite` …);
    /// returns how many lines were removed.
    pub fn remove_ice(&mut self) -> usize {
        let before = self.0.len();
        self.0.retain(
            |line| !matches!(line, Line::Attribute(a) if ICE_ATTRIBUTES.contains(&&*a.name)),
        );
        before - self.0.len()
    }
}

impl<'a> IntoIterator for &'a Lines {
    type Item = &'a Line;
    type IntoIter = std::slice::Iter<'a, Line>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Line> for Lines {
    fn from_iter<I: IntoIterator<Item = Line>>(iter: I) -> Lines {
        Lines(iter.into_iter().collect())
    }
}

impl From<Vec<Line>> for Lines {
    fn from(lines: Vec<Line>) -> Lines {
        Lines(lines)
    }
}

/// The position of a line type in RFC 8866 §5's order (session: `i u e p c b t r z k a`;
/// media: `i c b k a`), unknown types last. Used only to place a new `c=`.
fn order_rank(kind: Option<u8>) -> u8 {
    match kind {
        Some(b'i') => 1,
        Some(b'u') => 2,
        Some(b'e') => 3,
        Some(b'p') => 4,
        Some(b'c') => 5,
        Some(b'b') => 6,
        Some(b't') => 7,
        Some(b'r') => 8,
        Some(b'z') => 9,
        Some(b'k') => 10,
        Some(b'a') => 11,
        _ => 12,
    }
}
