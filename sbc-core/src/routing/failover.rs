//! The order in which targets are tried: RFC 2782's selection, run to the end.

use super::ResolvedTarget;

/// Orders `targets` for failover: by ascending priority, and within one priority by
/// repeated weighted random selection as RFC 2782 describes ("Usage rules"): the targets
/// not yet ordered are listed with those of weight 0 first, a number is drawn uniformly in
/// `0..=sum of their weights`, and the first target whose running sum of weights reaches it
/// comes next. A target of weight `w` is thus picked first with probability `w / sum`;
/// targets of weight 0 come after the weighted ones (except with a tiny probability), and
/// among themselves keep their given order.
///
/// `random` is the injected randomness (uniform `u64`s); with a fixed sequence the order is
/// deterministic.
pub fn failover_order(
    mut targets: Vec<ResolvedTarget>,
    random: &mut dyn FnMut() -> u64,
) -> Vec<ResolvedTarget> {
    // Stable: equal priorities keep their given order, weight-0 ones first.
    targets.sort_by_key(|t| (t.priority, t.weight != 0));
    let mut ordered = Vec::with_capacity(targets.len());
    let mut rest = targets.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|t| t.priority == first.priority)
            .count();
        let (group, after) = rest.split_at(same);
        order_group(group.to_vec(), random, &mut ordered);
        rest = after;
    }
    ordered
}

/// RFC 2782 selection within one priority, appending to `out`.
fn order_group(
    mut group: Vec<ResolvedTarget>,
    random: &mut dyn FnMut() -> u64,
    out: &mut Vec<ResolvedTarget>,
) {
    while !group.is_empty() {
        let sum: u64 = group.iter().map(|t| u64::from(t.weight)).sum();
        // `sum + 1` cannot overflow: at most 64 targets of weight < 2^16.
        let draw = if sum == 0 { 0 } else { random() % (sum + 1) };
        let mut running = 0u64;
        let chosen = group
            .iter()
            .position(|t| {
                running += u64::from(t.weight);
                running >= draw
            })
            .unwrap_or(group.len() - 1);
        out.push(group.remove(chosen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Protocol;

    fn target(port: u16, priority: u16, weight: u16) -> ResolvedTarget {
        ResolvedTarget {
            addr: std::net::SocketAddr::from(([192, 0, 2, 1], port)),
            protocol: Protocol::Udp,
            server_name: None,
            priority,
            weight,
        }
    }

    fn ports(targets: &[ResolvedTarget]) -> Vec<u16> {
        targets.iter().map(|t| t.addr.port()).collect()
    }

    #[test]
    fn priorities_come_in_ascending_order() {
        let order = failover_order(
            vec![target(3, 30, 5), target(1, 10, 5), target(2, 20, 5)],
            &mut || 0,
        );
        assert_eq!(ports(&order), [1, 2, 3]);
    }

    #[test]
    fn zero_weights_keep_the_given_order() {
        let order = failover_order(
            vec![target(1, 10, 0), target(2, 10, 0), target(3, 10, 0)],
            &mut || 12345,
        );
        assert_eq!(ports(&order), [1, 2, 3]);
    }

    #[test]
    fn the_draw_selects_by_running_sum() {
        // Weights 1 and 3: running sums 1 and 4, draws in 0..=4.
        let group = || vec![target(1, 10, 1), target(2, 10, 3)];
        assert_eq!(ports(&failover_order(group(), &mut || 1)), [1, 2]);
        assert_eq!(ports(&failover_order(group(), &mut || 2)), [2, 1]);
        assert_eq!(ports(&failover_order(group(), &mut || 4)), [2, 1]);
        assert_eq!(ports(&failover_order(group(), &mut || 5)), [1, 2]); // 5 % 5 == 0
    }
}
