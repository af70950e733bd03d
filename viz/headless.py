"""Off-screen rendering set-up for machines with no display (CI, servers); imports no VTK.

The VTK wheels (9.4 and later) carry an X, an EGL and an OSMesa render window and pick one
at run time. With no ``DISPLAY`` they try X, log "bad X server connection", and fall back to
EGL, which Mesa serves on the CPU (llvmpipe) when there is no GPU. Choosing EGL up front
skips the failed X attempt. See ``docs/viz.md`` for the system packages this needs.
"""

from __future__ import annotations

import os
import sys

__all__ = ["prepare_offscreen"]


def prepare_offscreen() -> None:
    """Select VTK's EGL render window on Linux with no display, unless a window is chosen.

    Sets ``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` when ``DISPLAY`` and
    ``WAYLAND_DISPLAY`` are unset and ``VTK_DEFAULT_OPENGL_WINDOW`` is not set already (set
    it to ``vtkOSOpenGLRenderWindow`` yourself to use OSMesa instead). Does nothing
    elsewhere. Call it before the first render window is created; :func:`twin.viz.plot_run`
    and :func:`twin.viz.render_movie` call it for off-screen plotters.
    """
    if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ):
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkEGLRenderWindow"
