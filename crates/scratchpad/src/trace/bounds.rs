//! Lower bounds: the most bytes live at once, over the whole trace and per
//! phase. No strategy can hold less at its peak.

use crate::{Phase, ScratchError};

use super::Trace;
use super::ops::Op;

impl Trace {
    /// The lower bound: the most bytes live at once anywhere in the trace.
    /// No strategy can hold less than this at its peak.
    pub fn lower_bound(&self) -> Result<usize, ScratchError> {
        Ok(self.bounds()?.0)
    }

    /// The lower bound of each phase (indexed by [`Phase::index`]): the most
    /// bytes live at once during that phase's steps.
    pub fn phase_lower_bounds(&self) -> Result<[usize; 2], ScratchError> {
        Ok(self.bounds()?.1)
    }

    fn bounds(&self) -> Result<(usize, [usize; 2]), ScratchError> {
        let ops = self.ops()?;
        let mut sizes = Vec::new();
        let (mut live, mut peak, mut phase_peak, mut phase) = (0usize, 0, [0usize; 2], None);
        for op in &ops {
            match *op {
                Op::Step(p, _) => phase = Some(p),
                Op::EndStep => phase = None,
                Op::Acquire { lease, bytes, .. } => {
                    if sizes.len() <= lease {
                        sizes.resize(lease + 1, 0);
                    }
                    sizes[lease] = bytes;
                    live = live
                        .checked_add(bytes)
                        .ok_or_else(|| ScratchError::InvalidTrace {
                            reason: "the bytes live at once overflow usize: no memory holds them"
                                .into(),
                        })?;
                    peak = peak.max(live);
                    if let Some(p) = phase {
                        let slot: &mut usize = &mut phase_peak[Phase::index(p)];
                        *slot = (*slot).max(live);
                    }
                }
                Op::Release { lease } => live -= sizes[lease],
                Op::Scope | Op::EndScope => {}
            }
        }
        Ok((peak, phase_peak))
    }
}
