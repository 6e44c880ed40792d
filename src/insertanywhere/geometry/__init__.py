"""Pure geometry: planes, rigid and similarity transforms, rotations. Arrays in, arrays out; no I/O."""
