//! Named in-process functions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::Function;

/// In-process functions by name, for `mode=inproc` and the gateway. Names
/// come from [`Function::name`]; a later function replaces an earlier one
/// of the same name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: BTreeMap<String, Arc<dyn Function>>,
}

impl Registry {
    /// No functions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `f` under its name (builder style).
    pub fn with(mut self, f: Arc<dyn Function>) -> Self {
        self.insert(f);
        self
    }

    /// Add `f` under its name; returns the function it replaces, if any.
    pub fn insert(&mut self, f: Arc<dyn Function>) -> Option<Arc<dyn Function>> {
        self.functions.insert(f.name().to_string(), f)
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Function>> {
        self.functions.get(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }

    /// The functions, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Function>> {
        self.functions.values()
    }

    /// How many functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The names as a comma-separated list, or `(none)`.
    pub(crate) fn describe_names(&self) -> String {
        if self.is_empty() {
            "(none)".to_string()
        } else {
            self.names().collect::<Vec<_>>().join(", ")
        }
    }
}

impl FromIterator<Arc<dyn Function>> for Registry {
    fn from_iter<I: IntoIterator<Item = Arc<dyn Function>>>(iter: I) -> Self {
        let mut r = Registry::new();
        for f in iter {
            r.insert(f);
        }
        r
    }
}

impl Extend<Arc<dyn Function>> for Registry {
    fn extend<I: IntoIterator<Item = Arc<dyn Function>>>(&mut self, iter: I) {
        for f in iter {
            self.insert(f);
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}
