def test_x():
    import ddcore.registry
