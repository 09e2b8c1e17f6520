// crypto_signer is header-only; this unit makes sure the header compiles on its own.
#include "p2psip/peer/crypto_signer.hpp"
