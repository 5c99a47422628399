//! Class labels, softmax and top-k.

use vaccel_core::{Error, Label, Result};

/// Class names: line `i` names class `i`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    /// Parse a labels file (UTF-8, one class per line; a trailing newline and
    /// `\r` line ends are fine).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Labels> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::inval(format!("labels file {what} is not UTF-8 text")))?;
        Ok(Labels {
            names: text
                .lines()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect(),
        })
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no names.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `i` (`class i` when the file has no such line).
    pub fn name(&self, i: usize) -> String {
        self.names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class {i}"))
    }
}

/// Softmax of `logits` (computed in f64, stable against large values).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![0.0; logits.len()];
    }
    let exps: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// The `k` best classes of `logits`, best first (ties: lower index first).
pub fn top_k(logits: &[f32], k: usize, labels: &Labels) -> Vec<Label> {
    let probs = softmax(logits);
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    let k = k.min(idx.len());
    let cmp = |a: &usize, b: &usize| probs[*b].total_cmp(&probs[*a]).then(a.cmp(b));
    if k < idx.len() && k > 0 {
        idx.select_nth_unstable_by(k - 1, cmp);
    }
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter()
        .map(|i| Label {
            index: i as u32,
            label: labels.name(i),
            score: probs[i],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_top_k() {
        let labels = Labels::parse(b"a\r\nb\nc\n", "t").unwrap();
        assert_eq!(labels.len(), 3);
        let p = softmax(&[1.0, 1.0, 1000.0]);
        assert!((p[2] - 1.0).abs() < 1e-6 && p[0] < 1e-6);
        let top = top_k(&[0.5, 2.0, 2.0, -1.0], 3, &labels);
        assert_eq!(
            top.iter().map(|l| l.index).collect::<Vec<_>>(),
            vec![1, 2, 0]
        );
        assert_eq!(top[0].label, "b");
        assert_eq!(top_k(&[0.0, 1.0, 0.0, 5.0], 1, &labels)[0].label, "class 3");
        assert_eq!(top_k(&[0.0, 1.0], 10, &labels).len(), 2);
        let s: f32 = softmax(&[0.1, 0.2, 0.3]).iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
    }
}
