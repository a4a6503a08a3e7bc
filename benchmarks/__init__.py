"""Side-by-side measurements of imgserve; run by hand (`make bench`), never as tests."""
