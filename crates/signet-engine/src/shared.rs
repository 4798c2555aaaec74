//! A verdict as the cache holds it, shared by every caller it is served to.

use std::any::Any;
use std::sync::OnceLock;

use crate::ImageVerdict;

/// A verdict shared without copying, with one slot for a rendering of it that its consumer
/// makes once and reuses as long as the verdict is cached (the server keeps the JSON of its
/// answer there). Cached verdicts are served as the same `Arc<SharedVerdict>` to every
/// caller, so its `reference` is the one of the call that reached it (not necessarily the
/// spelling of the current call); [`Engine::verify`](crate::Engine::verify) gives an owned
/// copy with the caller's reference.
pub struct SharedVerdict {
    verdict: ImageVerdict,
    rendering: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for SharedVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedVerdict")
            .field("verdict", &self.verdict)
            .field("rendered", &self.rendering.get().is_some())
            .finish()
    }
}

impl SharedVerdict {
    pub fn new(verdict: ImageVerdict) -> Self {
        SharedVerdict {
            verdict,
            rendering: OnceLock::new(),
        }
    }

    pub fn verdict(&self) -> &ImageVerdict {
        &self.verdict
    }

    /// The rendering kept with the verdict, made by `render` the first time. `None` when
    /// the slot already holds a rendering of another type.
    pub fn rendering<T: Any + Send + Sync>(
        &self,
        render: impl FnOnce(&ImageVerdict) -> T,
    ) -> Option<&T> {
        self.rendering
            .get_or_init(|| Box::new(render(&self.verdict)))
            .downcast_ref::<T>()
    }

    /// An owned copy, answering for `reference`.
    pub fn to_verdict(&self, reference: &str) -> ImageVerdict {
        let mut v = self.verdict.clone();
        reference.clone_into(&mut v.reference);
        v
    }
}

impl From<ImageVerdict> for SharedVerdict {
    fn from(v: ImageVerdict) -> Self {
        SharedVerdict::new(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerdictError;
    use signet_notation::ErrorCode;

    #[test]
    fn a_rendering_is_made_once_and_typed() {
        let v = SharedVerdict::new(ImageVerdict::failed(
            "a",
            None,
            VerdictError {
                code: ErrorCode::Timeout,
                message: "late".into(),
            },
        ));
        let mut calls = 0;
        assert_eq!(
            v.rendering(|_| {
                calls += 1;
                7u32
            }),
            Some(&7)
        );
        assert_eq!(v.rendering(|_| 8u32), Some(&7));
        assert_eq!(v.rendering(|_| "other type"), None);
        assert_eq!(calls, 1);
        assert_eq!(v.to_verdict("b").reference, "b");
    }
}
