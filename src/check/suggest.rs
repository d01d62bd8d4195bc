//! "Did you mean ...?": the declared name nearest to a misspelt one.
//!
//! Distance is the optimal-string-alignment edit distance (insertions, deletions,
//! substitutions and swaps of two neighbouring characters each cost 1), computed with one
//! table of (name length + 1) × (candidate length + 1) cells per candidate. A candidate is
//! suggested only when it is close: at most one edit for names up to five characters, two
//! up to eight, three beyond. It never invents a name: only declared ones are suggested.

/// The candidate nearest to `name`, if one is close enough; ties go to the first.
pub fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let allowed = match name.chars().count() {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(name, candidate);
        if distance == 0 {
            return None; // declared after all: nothing to suggest
        }
        let better = best.is_none_or(|(d, _)| distance < d);
        if distance <= allowed && better {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // table[i][j]: distance between a[..i] and b[..j].
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[i - 1][j] + 1)
                .min(table[i][j - 1] + 1)
                .min(table[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[i - 2][j - 2] + 1);
            }
            table[i][j] = best;
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("pid", "pid"), 0);
        assert_eq!(edit_distance("pdi", "pid"), 1);
        assert_eq!(edit_distance("acount", "account"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn only_close_declared_names_are_suggested() {
        let declared = ["account", "aid", "pid", "client"];
        assert_eq!(closest_name("acount", declared), Some("account"));
        assert_eq!(closest_name("pdi", declared), Some("pid"));
        assert_eq!(closest_name("ai", declared), Some("aid"));
        assert_eq!(closest_name("clinet", declared), Some("client"));
        assert_eq!(closest_name("foo", declared), None);
        assert_eq!(closest_name("rid", ["pid", "aid"]), Some("pid"));
        assert_eq!(closest_name("tenant", declared), None);
        assert_eq!(
            closest_name("pid", declared),
            None,
            "an exact name needs no suggestion"
        );
    }
}
