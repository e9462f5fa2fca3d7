//! The per-frame path of a warp allocates nothing: a counting global allocator around
//! [`WarpPlan::apply`] (in its own test binary, so no other test's allocations are counted).

#![allow(unsafe_code)] // a global allocator is unsafe to implement; it only counts and forwards

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use camhub_media::warp::{Crop, Perspective, PlaneLayout, Rotation, Transform, WarpPlan};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// Delegates to the system allocator and counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn applying_a_plan_allocates_nothing() {
    let (w, h) = (1280u32, 720u32);
    let luma = PlaneLayout {
        width: w,
        height: h,
        stride: 1280 + 32,
    };
    let chroma = PlaneLayout {
        width: w / 2,
        height: h / 2,
        stride: 640 + 32,
    };
    let src_y = vec![100u8; luma.stride * h as usize];
    let src_c = vec![128u8; chroma.stride * (h / 2) as usize];
    let transforms = [
        Transform {
            rotate: Rotation::Cw90,
            ..Transform::default()
        },
        Transform {
            crop: Some(Crop {
                x: 10,
                y: 20,
                width: 640,
                height: 360,
            }),
            ..Transform::default()
        },
        Transform {
            rotate: Rotation::Cw180,
            perspective: Some(Perspective {
                corners: [[50.0, 40.0], [10.0, 700.0], [1270.0, 710.0], [1200.0, 30.0]],
                width: 1280,
                height: 720,
            }),
            ..Transform::default()
        },
    ];
    for t in &transforms {
        let plan = WarpPlan::new(&t.mapping(w, h).expect("mapping"), luma, chroma).expect("plan");
        let (ow, oh) = plan.output_size();
        let (ow, oh) = (ow as usize, oh as usize);
        let mut y = vec![0u8; ow * oh];
        let mut u = vec![0u8; ow.div_ceil(2) * oh.div_ceil(2)];
        let mut v = u.clone();
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..3 {
            plan.apply(
                [&src_y, &src_c, &src_c],
                [
                    (&mut y, ow),
                    (&mut u, ow.div_ceil(2)),
                    (&mut v, ow.div_ceil(2)),
                ],
                [16, 128, 128],
            )
            .expect("apply");
        }
        assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), before, "{t:?}");
        assert_eq!(y[ow * oh / 2], 100);
    }
}
