//! Interned call-site tags, so per-tag accounting indexes a table instead of
//! hashing strings on the hot path.

use std::sync::Mutex;

/// Names of every tag interned so far; a tag is its index here. Index 0 is
/// the tag of requests that name no call site.
static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// A call site that acquires scratch memory ("attn.scores"), interned once.
///
/// Use the [`tag!`](crate::tag!) macro at call sites: it interns on first use
/// and then costs one atomic load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

impl Tag {
    /// The tag of requests that name no call site.
    pub const UNTAGGED: Tag = Tag(0);

    /// Interns `name`, returning the same tag for the same name every time.
    /// Takes a global lock and searches linearly: call it once per call site.
    pub fn intern(name: &'static str) -> Tag {
        let mut names = lock_names();
        if let Some(idx) = names.iter().position(|n| *n == name) {
            return Tag(idx as u32);
        }
        names.push(name);
        Tag((names.len() - 1) as u32)
    }

    /// Interns a name that is not `'static` (a tag read from a trace file).
    /// A new name is leaked once; the same name is never leaked twice.
    pub fn intern_owned(name: &str) -> Tag {
        let mut names = lock_names();
        if let Some(idx) = names.iter().position(|n| *n == name) {
            return Tag(idx as u32);
        }
        names.push(Box::leak(name.to_owned().into_boxed_str()));
        Tag((names.len() - 1) as u32)
    }

    /// The name this tag was interned with.
    pub fn name(self) -> &'static str {
        lock_names()[self.0 as usize]
    }

    /// The tag with dense index `idx`, which must have been interned.
    pub(crate) fn from_index(idx: usize) -> Tag {
        Tag(idx as u32)
    }

    /// The dense index of this tag, for per-tag tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

fn lock_names() -> std::sync::MutexGuard<'static, Vec<&'static str>> {
    // A panic while the lock is held cannot leave the list inconsistent (it
    // is only pushed to), so a poisoned lock is still good.
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if names.is_empty() {
        names.push("untagged");
    }
    names
}

/// The interned [`Tag`] for a string literal, interned on first use:
/// `scope.acquire::<f32>(n, tag!("attn.scores"))`.
#[macro_export]
macro_rules! tag {
    ($name:literal) => {{
        static TAG: ::std::sync::OnceLock<$crate::Tag> = ::std::sync::OnceLock::new();
        *TAG.get_or_init(|| $crate::Tag::intern($name))
    }};
}
