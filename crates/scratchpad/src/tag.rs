//! Interned call-site tags, so per-tag accounting indexes a table instead of
//! hashing strings on the hot path.

use std::collections::HashMap;
use std::sync::Mutex;

/// Every tag interned so far: its name by index (a tag is its index here;
/// index 0 is the tag of requests that name no call site) and its index by
/// name, so interning is one hash lookup however many tags there are (a
/// trace file may name tens of thousands).
struct Names {
    by_index: Vec<&'static str>,
    by_name: HashMap<&'static str, u32>,
    /// Names interned from owned strings (trace files) so far.
    owned: usize,
}

/// The most tag names taken from owned strings (trace files) that a
/// process keeps; see [`Tag::intern_owned`].
pub const MAX_OWNED_TAGS: usize = 1 << 16;

static NAMES: Mutex<Option<Names>> = Mutex::new(None);

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
    /// Takes a global lock: call it once per call site (the `tag!` macro).
    pub fn intern(name: &'static str) -> Tag {
        with_names(|names| names.intern(name, |n| n))
    }

    /// Interns a name that is not `'static` (a tag read from a trace file).
    /// A new name is kept once for the process; the same name is never kept
    /// twice. At most [`MAX_OWNED_TAGS`] such names are kept, so untrusted
    /// traces cannot grow the table without bound: beyond them, every new
    /// name shares the tag `"trace.other"`.
    pub fn intern_owned(name: &str) -> Tag {
        with_names(|names| {
            if let Some(&idx) = names.by_name.get(name) {
                return Tag(idx);
            }
            if names.owned >= MAX_OWNED_TAGS {
                return names.intern("trace.other", |n| n);
            }
            names.owned += 1;
            names.intern(name, |n| Box::leak(n.to_owned().into_boxed_str()))
        })
    }

    /// The name this tag was interned with.
    pub fn name(self) -> &'static str {
        with_names(|names| names.by_index[self.0 as usize])
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

impl Names {
    /// The tag of `name`, interning it (made `'static` by `keep`) if new.
    fn intern<'n>(&mut self, name: &'n str, keep: impl FnOnce(&'n str) -> &'static str) -> Tag {
        if let Some(&idx) = self.by_name.get(name) {
            return Tag(idx);
        }
        let name = keep(name);
        let idx = u32::try_from(self.by_index.len()).expect("fewer than 2^32 tags");
        self.by_index.push(name);
        self.by_name.insert(name, idx);
        Tag(idx)
    }
}

fn with_names<R>(f: impl FnOnce(&mut Names) -> R) -> R {
    // A panic while the lock is held cannot leave the table inconsistent
    // (it is only added to, index and map together after the name is
    // made), so a poisoned lock is still good.
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(|| Names {
        by_index: vec!["untagged"],
        by_name: HashMap::from([("untagged", 0)]),
        owned: 0,
    });
    f(names)
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
