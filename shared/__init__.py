# Code both ends run: the crypto core, TOTP, the sealed box, the clock and the hardware seam.
