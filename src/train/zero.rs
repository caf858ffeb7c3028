//! ZeRO stage 1 (Rajbhandari et al. 2020): the optimizer state is divided over the
//! data-parallel ranks instead of repeated on each. Every rank still holds all weights and
//! computes all gradients (averaged as in plain data parallelism); each updates only the
//! parameters it owns, and the new weights then reach every rank. AdamW's moments are 8 of the
//! 16-22 bytes per parameter a rank holds, so over 8 ranks this saves 7 bytes per parameter:
//! for gpt-1b, 7 GB of a 24 GB card (`synthlm budget`).
//!
//! Parameters are owned whole (no parameter is split), assigned largest first to the least
//! loaded rank. The weights are shared by a sum in which only the owner contributes (the
//! others add zeros, and x + 0 = x exactly), so a sharded run's weights equal an unsharded
//! run's bit for bit (tested). With only a sum to build on, that moves twice the bytes a
//! broadcast or all-gather would; a device collective can do better behind the same calls.

use crate::train::collective::Collective;
use crate::train::optim::AdamW;
use anyhow::Result;
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;

/// The rank that owns each parameter: largest first, to the least loaded rank (ties to the
/// lower rank, then the earlier parameter), so every rank computes the same assignment.
pub fn owners(sizes: &[usize], world: usize) -> Vec<usize> {
    let world = world.max(1);
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut load = vec![0usize; world];
    let mut out = vec![0; sizes.len()];
    for i in order {
        let r = (0..world)
            .min_by_key(|&r| (load[r], r))
            .expect("world >= 1");
        out[i] = r;
        load[r] += sizes[i];
    }
    out
}

/// After a sharded step: every parameter's new weights, from its owner, on every rank.
pub fn share_weights(params: &[(String, Var)], opt: &AdamW, coll: &dyn Collective) -> Result<()> {
    for (i, (_, var)) in params.iter().enumerate() {
        let t = var.as_tensor();
        let mine = if opt.owned()[i] {
            t.flatten_all()?
        } else {
            t.flatten_all()?.zeros_like()?
        };
        let sum = coll.all_reduce_sum_tensor(&mine)?;
        if !opt.owned()[i] {
            var.set(&sum.reshape(t.shape())?)?;
        }
    }
    Ok(())
}

/// The whole optimizer state in [`AdamW::state_tensors`]' format, gathered from the ranks that
/// own each part (every rank must call it; each gets the whole).
pub fn gathered_state(
    opt: &AdamW,
    names: &[String],
    device: &Device,
    coll: &dyn Collective,
) -> Result<HashMap<String, Tensor>> {
    if !opt.is_sharded() {
        return opt.state_tensors(names, device);
    }
    let mut out = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        let (m, v) = opt.moments_host(i)?;
        for (key, mut x) in [(format!("m.{n}"), m), (format!("v.{n}"), v)] {
            if x.is_empty() {
                x = vec![0.0; opt.size(i)];
            }
            coll.all_reduce_sum(&mut x)?;
            out.insert(key, Tensor::from_vec(x, opt.size(i), device)?);
        }
    }
    out.insert("t".into(), Tensor::new(&[opt.t as u32], device)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_balance_the_elements_and_every_rank_agrees() {
        let sizes = [100, 10, 60, 50, 5, 40];
        let o = owners(&sizes, 3);
        // 100 -> r0; 60 -> r1; 50 -> r2; 40 -> r2 (50 < 60); 10 -> r1 (60 < 90); 5 -> r1 (70 < 90)
        assert_eq!(o, vec![0, 1, 1, 2, 1, 2]);
        let load = |r| {
            sizes
                .iter()
                .zip(&o)
                .filter(|(_, &x)| x == r)
                .map(|(s, _)| s)
                .sum::<usize>()
        };
        assert_eq!((load(0), load(1), load(2)), (100, 75, 90));
        assert_eq!(owners(&sizes, 1), vec![0; 6]);
    }
}
