# NIST SP 800-38A AES-256 vectors through `cryptolib`: the real module under MicroPython, the host
# stand-in under CPython, so both are held to the same published values.
import unittest

import cryptolib

H = bytes.fromhex
KEY = H("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
IV = H("000102030405060708090a0b0c0d0e0f")
PT = H("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
       "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
CBC = H("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
        "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b")
ECB1 = H("f3eed1bdb5d2a03c064b5a7e3db181f8")


class TestAes(unittest.TestCase):
    def test_cbc_f25(self):
        self.assertEqual(cryptolib.aes(KEY, 2, IV).encrypt(PT), CBC)
        self.assertEqual(cryptolib.aes(KEY, 2, IV).decrypt(CBC), PT)

    def test_cbc_in_place(self):
        buf = bytearray(PT)
        cryptolib.aes(KEY, 2, IV).encrypt(buf, buf)
        self.assertEqual(bytes(buf), CBC)

    def test_ecb_f15(self):
        self.assertEqual(cryptolib.aes(KEY, 1).encrypt(PT[:16]), ECB1)

    def test_no_ctr_mode(self):
        # the ESP32 port has ECB and CBC only; our unix variant is built the same way
        self.assertRaises(ValueError, cryptolib.aes, KEY, 6, IV)
