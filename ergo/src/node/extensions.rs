//! Per-node state of the layers above the core, kept by the node without knowing its type.
//!
//! The application table (`app.rs`) and the event table (`events/`) belong to one node each, but
//! the core sits below them and must not name them. A node keeps them here instead, each made on
//! first use and found again by its type. Nothing here is on the message path: a lookup is a few
//! atomic loads and type-id comparisons, done when an application or an event is started, looked
//! up or ended.

use std::any::{Any, TypeId};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// How many extension types there can be: one per layer that keeps per-node state (two today).
const SLOTS: usize = 4;

type Slot = OnceLock<(TypeId, Box<dyn Any + Send + Sync>)>;

#[derive(Default)]
pub(super) struct Extensions {
    slots: [Slot; SLOTS],
    /// Serializes first uses, so that one type never gets two slots.
    init: Mutex<()>,
}

impl Extensions {
    /// The `T` of this node, made on first use.
    pub(super) fn get<T: Default + Send + Sync + 'static>(&self) -> &T {
        if let Some(found) = self.find::<T>() {
            return found;
        }
        let _init = self.init.lock();
        if let Some(found) = self.find::<T>() {
            return found;
        }
        let slot = self
            .slots
            .iter()
            .find(|slot| slot.get().is_none())
            .expect("more per-node extension types than `SLOTS`: raise it");
        let (_, value) = slot.get_or_init(|| (TypeId::of::<T>(), Box::new(T::default())));
        value
            .downcast_ref()
            .expect("the slot was just filled with a `T`")
    }

    fn find<T: 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.slots
            .iter()
            .map_while(|slot| slot.get())
            .find(|(slot_id, _)| *slot_id == id)
            .and_then(|(_, value)| value.downcast_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct A(u32);
    #[derive(Default)]
    struct B(&'static str);

    #[test]
    fn each_type_gets_one_value_made_on_first_use() {
        let ext = Extensions::default();
        assert!(ext.find::<A>().is_none());
        let a: *const A = ext.get::<A>();
        assert_eq!(ext.get::<B>().0, "");
        assert_eq!(ext.get::<A>().0, 0);
        assert!(std::ptr::eq(a, ext.get::<A>()), "the same value every time");
        assert!(ext.find::<B>().is_some());
    }
}
