// Resume tracking tests live beside this file.
